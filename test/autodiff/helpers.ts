// Test helpers: run a built graph through src/runtime (in-process, no worker: these graphs are tiny).
import type { Tensor } from '../../src/core/tensor.js';
import { type Graph, toModelProto } from '../../src/graph/index.js';
import { encodeModel } from '../../src/onnx/encode.js';
import { createSession, type SessionOptions } from '../../src/runtime/index.js';
import { trainingSessionOptions } from '../../src/autodiff/index.js';
import type { GraphRunner } from '../../src/autodiff/grad-check.js';

export async function openGraph(g: Graph, opts: SessionOptions = {}): Promise<{
  run: (feeds: Record<string, Tensor>) => Promise<Record<string, Tensor>>;
  release: () => Promise<void>;
}> {
  const { model, externalData } = toModelProto(g);
  const s = await createSession(encodeModel(model), {
    worker: false,
    reuse: false,
    threads: 1,
    ...trainingSessionOptions,
    ...(externalData.length ? { externalData } : {}),
    ...opts,
  });
  return { run: (feeds) => s.run(feeds), release: () => s.release() };
}

/** gradCheck's runner: one session per family graph. */
export const runner: GraphRunner = async (g) => {
  const s = await openGraph(g);
  return s.run;
};

export function f64(t: Tensor | undefined): Float64Array {
  if (!t) throw new Error('missing output');
  return Float64Array.from(t.data as ArrayLike<number>);
}

/** Run `g` once on `feeds` in a session of its own, released afterwards. */
export async function runOnce(g: Graph, feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
  const s = await openGraph(g);
  try {
    return await s.run(feeds);
  } finally {
    await s.release();
  }
}
