// One GEMM for the LoRA A factors of sibling modules that read the same input: q_proj/k_proj/v_proj (the
// normed hidden state) and gate_proj/up_proj (the post-attention normed state), as in Llama, Mistral and
// Qwen. x·[A_q; A_k; A_v]ᵀ [..., ΣR] then Split gives each module its x·Aᵀ [..., R], exactly the values
// the three separate GEMMs give (a GEMM's output column depends only on its own row of Aᵀ).
// Why: r = 16 GEMMs are thin and run far below the CPU's peak (docs/performance.md); one [.., 48] GEMM
// instead of three [.., 16] ones reads x once forward, and in the backward computes dA for all three in
// one GEMM and their dx contributions summed inside one GEMM (no Adds).
// Only when every sibling present is a LoRA adapter whose input is undropped (dropout masks differ per
// module) and that takes the same x; anything else falls back to the per-module GEMM.
// Not here: the LoRA layer itself (lora-layer.ts).

import { op, type Value } from '../graph/index.js';
import type { BuildContext } from '../nn/context.js';
import { nnFormulation } from '../nn/formulation.js';

/** Module-name groups whose members read the same input inside one decoder layer. */
const GROUPS: readonly (readonly string[])[] = [
  ['q_proj', 'k_proj', 'v_proj'],
  ['gate_proj', 'up_proj'],
];

/** What a sibling must offer to join: its A [R, in] when its input may be shared. */
interface Shareable {
  shareableA(): Value | undefined;
}

const isShareable = (a: unknown): a is Shareable => typeof (a as Partial<Shareable> | undefined)?.shareableA === 'function';

/** Per input value: module path → its slice of the shared x·Aᵀ. */
const byInput = new WeakMap<Value, Map<string, Value>>();

/**
 * x·Aᵀ [..., R] for `modulePath` computed once for its whole sibling group, or undefined when the module
 * has no group, the group has fewer than two shareable LoRA modules, or x differs from the group's input.
 */
export function sharedLoraDown(ctx: BuildContext, modulePath: string, x: Value): Value | undefined {
  const cached = byInput.get(x)?.get(modulePath);
  if (cached !== undefined) return cached;
  const dot = modulePath.lastIndexOf('.');
  const prefix = modulePath.slice(0, dot + 1);
  const leaf = modulePath.slice(dot + 1);
  const group = GROUPS.find((g) => g.includes(leaf));
  if (group === undefined || !ctx.adaptersEnabled || nnFormulation(ctx.g).loraInput !== 'shared') return undefined;
  const members: { path: string; A: Value }[] = [];
  for (const name of group) {
    const adapter = ctx.adapters.get(prefix + name);
    const A = isShareable(adapter) ? adapter.shareableA() : undefined;
    if (A !== undefined) members.push({ path: prefix + name, A });
  }
  if (members.length < 2 || !members.some((m) => m.path === modulePath)) return undefined;
  // Only the first sibling to be built may create the shared GEMM: later ones find it in the cache, so
  // a sibling that reads another input (not the case in the supported decoders) never joins by accident.
  if (members[0]!.path !== modulePath) return undefined;
  const sizes = members.map((m) => m.A.shape[0]!);
  const Acat = op.Concat(members.map((m) => m.A), 0); // [ΣR, in]
  const axAll = op.MatMul(x, op.Transpose(Acat, [1, 0])); // [..., ΣR]
  const parts = op.Split(axAll, sizes, -1); // each [..., R]
  const slices = new Map<string, Value>();
  members.forEach((m, i) => slices.set(m.path, parts[i]!));
  byInput.set(x, slices);
  return slices.get(modulePath);
}
