// Opening the session that runs an optimizer's update graph, and running it on one page.
// The update runs in-process (no worker): its inputs (parameters, gradients, state pages) are then read in
// place by ORT, with no copy into a worker and none back, and only the outputs are fresh buffers (which
// become the new state pages). A page's run holds the JS thread; paged optimizers yield between pages.
// Identical graphs share one session (the runtime's reuse), so two optimizers of one size cost one session.
// Not here: paging (paged.ts), the update math (kernels/).

import type { Graph } from '../graph/index.js';
import { toModelProto } from '../graph/index.js';
import { encodeModel } from '../onnx/encode.js';
import { createSession, type Session } from '../runtime/index.js';
import type { OptimizerOptions } from './optimizer.js';

export type UpdateDevice = NonNullable<OptimizerOptions['device']>;

/**
 * A session for `g` on `device`. Fails with the runtime's EP_UNAVAILABLE error (and its fix) when the
 * device's execution provider cannot load.
 */
export async function openUpdateSession(g: Graph, device: UpdateDevice | undefined): Promise<Session> {
  const { model } = toModelProto(g);
  return createSession(encodeModel(model), { device: device ?? 'cpu', worker: false });
}

