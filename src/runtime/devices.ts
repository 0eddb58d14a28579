// Execution providers: the names we accept, what each needs installed, and the translation of ORT's raw
// failures into TsFinetuneError('EP_UNAVAILABLE') with the command that fixes them. The raw messages
// (measured on onnxruntime-node 1.30, see DESIGN.md) are
//   CUDA:   "OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library"
//   WebGPU: "... Failed to get a WebGPU adapter: No supported adapters"
// Not here: creating sessions (ort-backend.ts). This file never imports onnxruntime-node: it only looks
// at files, so `env` and error paths can use it without loading the native addon.

import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { TsFinetuneError } from '../core/errors.js';
import { moduleFile } from './module-file.js';

export type Device = 'cpu' | 'cuda' | 'webgpu';
export type DeviceRequest = Device | 'auto';
export const DEVICES: readonly Device[] = ['cpu', 'cuda', 'webgpu'];
/** The order 'auto' tries. */
export const AUTO_ORDER: readonly Device[] = ['cuda', 'webgpu', 'cpu'];

export const CUDA_INSTALL_HINT =
  'To enable it on a Linux x64 host with an NVIDIA driver: install CUDA 12 and cuDNN 9 (libcudart.so.12, ' +
  'libcublas.so.12, libcudnn.so.9 on LD_LIBRARY_PATH), then fetch ORT\'s CUDA provider with ' +
  '`ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node` (needs network access). ' +
  "Or use device: 'cpu' / 'auto'.";

export const WEBGPU_INSTALL_HINT =
  'WebGPU in onnxruntime-node runs on Dawn over Vulkan on Linux (D3D12 on Windows, Metal on macOS), so it ' +
  'needs a Vulkan driver: a GPU vendor driver, or on a CPU-only host Mesa >= 25 lavapipe ' +
  '(`apt install libvulkan1 mesa-vulkan-drivers` on a distribution that ships Mesa 25+; Debian 12\'s Mesa 22 ' +
  "lavapipe is too old). Check with `vulkaninfo --summary`. Or use device: 'cpu' / 'auto'.";

/** onnxruntime-node's native folder (where its EP libraries live), or undefined if it cannot be found. */
export function ortBinaryDir(): string | undefined {
  try {
    const req = createRequire(moduleFile());
    const pkg = req.resolve('onnxruntime-node/package.json');
    return path.join(path.dirname(pkg), 'bin', 'napi-v6', process.platform, process.arch);
  } catch {
    return undefined;
  }
}

/** The installed onnxruntime-node version, read from its package.json (no native load). */
export function ortVersion(): string | undefined {
  try {
    const req = createRequire(moduleFile());
    const pkg = JSON.parse(readFileSync(req.resolve('onnxruntime-node/package.json'), 'utf8')) as { version?: string };
    return pkg.version;
  } catch {
    return undefined;
  }
}

function libraryOnPath(name: string): boolean {
  const dirs = [
    ...(process.env['LD_LIBRARY_PATH'] ?? '').split(':').filter(Boolean),
    '/usr/lib/x86_64-linux-gnu',
    '/usr/lib/aarch64-linux-gnu',
    '/usr/lib64',
    '/usr/lib',
    '/lib/x86_64-linux-gnu',
    '/usr/local/lib',
  ];
  if (dirs.some((d) => existsSync(path.join(d, name)))) return true;
  try {
    // The dynamic loader's cache lists every library it can find by name.
    return readFileSync('/etc/ld.so.cache').includes(name);
  } catch {
    return false;
  }
}

/**
 * Why an EP certainly cannot start here, judged from files alone (undefined: it may start; try it).
 * 'auto' uses this to skip attempts that would only print native error logs.
 */
export function epPrecheck(device: Device): string | undefined {
  if (device === 'cpu') return undefined;
  if (device === 'cuda') {
    if (process.platform !== 'linux' || (process.arch !== 'x64' && process.arch !== 'arm64')) {
      return `onnxruntime-node ships the CUDA EP for Linux only (this is ${process.platform}-${process.arch})`;
    }
    const dir = ortBinaryDir();
    if (dir !== undefined && !existsSync(path.join(dir, 'libonnxruntime_providers_cuda.so'))) {
      return (
        `onnxruntime-node's CUDA provider (libonnxruntime_providers_cuda.so) is not installed in ${dir} ` +
        '(its install step was skipped, e.g. ONNXRUNTIME_NODE_INSTALL=skip, or ran on a host without CUDA)'
      );
    }
    return undefined;
  }
  if (process.platform === 'linux' && !libraryOnPath('libvulkan.so.1')) {
    return 'the Vulkan loader (libvulkan.so.1) is not installed, so Dawn finds no WebGPU adapter';
  }
  return undefined;
}

/** The message text of anything thrown. */
export function errorText(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

function firstLine(s: string): string {
  const t = s.trim();
  const i = t.indexOf('\n');
  return i < 0 ? t : t.slice(0, i);
}

/** The EP an ORT error is about, if it is an EP start-up failure. */
function epFailureOf(msg: string): Device | undefined {
  if (/AppendExecutionProvider_Cuda|libonnxruntime_providers_cuda|CUDA_PATH|cudaErrorNoDevice|cudnn/i.test(msg)) return 'cuda';
  if (/WebGPU adapter|No supported adapters|webgpu_context|Dawn|wgpu::/i.test(msg)) return 'webgpu';
  return undefined;
}

/** Build the EP_UNAVAILABLE error for `device`, given ORT's raw text (if any) and a precheck reason. */
export function epUnavailable(device: Device, raw: string | undefined, reason?: string): TsFinetuneError {
  const why = reason ?? epPrecheck(device);
  const hint = device === 'cuda' ? CUDA_INSTALL_HINT : device === 'webgpu' ? WEBGPU_INSTALL_HINT : '';
  const what = device === 'cuda' ? 'CUDA' : device === 'webgpu' ? 'WebGPU' : 'CPU';
  const parts = [`The ${what} execution provider is not available`];
  if (why !== undefined) parts.push(`: ${why}`);
  if (raw !== undefined) parts.push(` (onnxruntime: "${firstLine(raw).replace(/^.*?(?=OrtSession|Failed to get)/, '')}")`);
  parts.push(`. ${hint}`);
  return new TsFinetuneError('EP_UNAVAILABLE', parts.join(''), { device, reason: why, ortMessage: raw });
}

/** ONNX data type numbers that onnxruntime-node cannot hand to JS. */
const NO_JS_TYPE = /Unsupported data type: (16|17|18|19|20)\b/;

/**
 * Turn an error thrown while creating a session on `device` into a TsFinetuneError with a stable code.
 * Already-typed errors pass through.
 */
export function mapCreateError(e: unknown, device: Device): TsFinetuneError {
  if (e instanceof TsFinetuneError) return e;
  const msg = errorText(e);
  const ep = epFailureOf(msg);
  if (ep !== undefined) return epUnavailable(ep, msg);
  if (/backend not found|no available backend/i.test(msg)) {
    return epUnavailable(device, msg, `this onnxruntime-node build has no '${device}' backend on ${process.platform}-${process.arch}`);
  }
  if (NO_JS_TYPE.test(msg)) {
    return new TsFinetuneError(
      'UNSUPPORTED_DTYPE',
      'A graph input or output is bfloat16 (or an 8-bit float), which onnxruntime-node cannot pass to or from JS. ' +
        'Cast it to float32 (or float16) inside the graph and keep bf16 tensors internal.',
      { ortMessage: msg },
      { cause: e },
    );
  }
  return new TsFinetuneError('RUNTIME_ERROR', `onnxruntime could not create the session on ${device}: ${msg}`, { device, ortMessage: msg }, { cause: e });
}

/** Turn an error thrown by `run` into RUNTIME_ERROR (ORT's message names the failing node). */
export function mapRunError(e: unknown): TsFinetuneError {
  if (e instanceof TsFinetuneError) return e;
  const msg = errorText(e);
  return new TsFinetuneError('RUNTIME_ERROR', `onnxruntime failed running the graph: ${msg}`, { ortMessage: msg }, { cause: e });
}
