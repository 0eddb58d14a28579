// Execution providers: ORT's raw failures become EP_UNAVAILABLE with the fix in the message — checked for
// real here (this machine has neither ORT's CUDA provider nor a Vulkan driver; the real-failure tests skip
// on a machine where the EP's files are present, since it might then start), 'auto' falls back to CPU
// and says why, and probeExecutionProviders reports each EP from a child process.
import { describe, expect, it } from 'vitest';
import { createSession, probeExecutionProviders } from '../../src/runtime/index.js';
import { epPrecheck, mapCreateError } from '../../src/runtime/devices.js';
import { tinyBytes } from './graphs.js';

const cudaMissing = epPrecheck('cuda') !== undefined;
const vulkanMissing = epPrecheck('webgpu') !== undefined;

describe('ORT failures mapped to EP_UNAVAILABLE', () => {
  it('maps the measured raw messages (unit)', () => {
    const cuda = mapCreateError(new Error('OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library'), 'cuda');
    expect(cuda.code).toBe('EP_UNAVAILABLE');
    expect(cuda.message).toContain('ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node');
    expect(cuda.message).toContain('cuDNN 9');
    expect(cuda.details['device']).toBe('cuda');
    const webgpu = mapCreateError(
      new Error('/onnxruntime_src/onnxruntime/core/providers/webgpu/webgpu_context.cc:136 ... was false. Failed to get a WebGPU adapter: No supported adapters\n'),
      'webgpu',
    );
    expect(webgpu.code).toBe('EP_UNAVAILABLE');
    expect(webgpu.message).toContain('(onnxruntime: "Failed to get a WebGPU adapter: No supported adapters")');
    expect(webgpu.message).toMatch(/Vulkan driver.*Mesa >= 25 lavapipe.*Debian 12's Mesa 22/);
    expect(mapCreateError(new Error('no available backend found. ERR: [dml] backend not found.'), 'cuda').code).toBe('EP_UNAVAILABLE');
    expect(mapCreateError(new Error('Load model failed'), 'cpu').code).toBe('RUNTIME_ERROR');
  });

  it.skipIf(!cudaMissing)("device: 'cuda' fails for real with the install command", async () => {
    const e = await createSession(tinyBytes(), { device: 'cuda', worker: false, reuse: false }).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'EP_UNAVAILABLE' });
    const msg = (e as Error).message;
    expect(msg).toContain('OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library');
    expect(msg).toContain('ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node');
    expect(msg).toContain('libonnxruntime_providers_cuda.so');
  });

  it.skipIf(!vulkanMissing)("device: 'webgpu' fails for real with the Vulkan driver it needs", async () => {
    const e = await createSession(tinyBytes(), { device: 'webgpu', worker: false, reuse: false }).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'EP_UNAVAILABLE' });
    const msg = (e as Error).message;
    expect(msg).toContain('Failed to get a WebGPU adapter: No supported adapters');
    expect(msg).toContain('libvulkan.so.1');
    expect(msg).toContain('Mesa >= 25');
  });

  it.skipIf(!cudaMissing || !vulkanMissing)("'auto' falls back to CPU and reports why", async () => {
    const s = await createSession(tinyBytes(), { device: 'auto', worker: false, reuse: false });
    expect(s.device).toBe('cpu');
    expect(s.attempts.map((a) => [a.device, a.error.code])).toEqual([
      ['cuda', 'EP_UNAVAILABLE'],
      ['webgpu', 'EP_UNAVAILABLE'],
    ]);
    expect(s.attempts[0]!.error.message).toContain('ONNXRUNTIME_NODE_INSTALL=cuda12');
    await s.release();
  });
});

describe('probeExecutionProviders', () => {
  it('starts a session per EP in a child process and says why one cannot', async () => {
    const res = await probeExecutionProviders();
    expect(res.map((r) => r.device)).toEqual(['cpu', 'cuda', 'webgpu']);
    expect(res[0]).toMatchObject({ device: 'cpu', available: true });
    if (cudaMissing) {
      expect(res[1]).toMatchObject({ available: false, code: 'EP_UNAVAILABLE', reason: expect.stringContaining('ONNXRUNTIME_NODE_INSTALL=cuda12') });
      // ORT's native log line (the library it failed to open) is captured, not printed over our output.
      expect(res[1]!.log?.join('\n')).toMatch(/providers_shared|providers_cuda/);
    }
    if (vulkanMissing) {
      expect(res[2]).toMatchObject({ available: false, code: 'EP_UNAVAILABLE', reason: expect.stringContaining('No supported adapters') });
    }
  });
});
