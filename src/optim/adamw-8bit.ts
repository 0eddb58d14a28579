// `adamw_8bit` and `paged_adamw_8bit`: bitsandbytes' 8-bit AdamW (bnb.optim.AdamW with optim_bits=8, as
// transformers builds it) over the flat parameter vector. Per trainable tensor, as bnb decides per
// parameter: tensors of 4096 elements or more keep both moments as 8-bit codes (signed dynamic map for m,
// unsigned for v) with one float32 absmax per 256-element block of that tensor, updated by
// kernels/adamw-8bit.ts; smaller tensors keep float32 moments and take bnb's 32-bit AdamW step
// (kernels/adamw.ts, math 'bnb32').
// Layout: the 8-bit tensors are laid end to end, each padded to whole blocks (padding reads as bnb reads
// items past a tensor's end), and that "quantised domain" is cut into pages; the float32 tensors form a
// second domain. `paramRanges` says where each tensor lies in the flat vector; without it the whole vector
// is one tensor. The paged variant uses pages of `pageSize` (default 1,048,576) and gives identical bits.
// Not here: the update math (kernels/), page mechanics (paged.ts).

import { TsFinetuneError } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';
import { Graph } from '../graph/index.js';
import { dynamicMap } from '../quant/index.js';
import type { Session } from '../runtime/index.js';
import { bnb32AdamwHyper, buildAdamwGraph, hyperTensor } from '../../kernels/adamw.js';
import { buildAdamw8bitGraph, PAD_CODE1, PAD_CODE2, STATE_BLOCKSIZE } from '../../kernels/adamw-8bit.js';
import type { Optimizer, OptimizerOptions } from './optimizer.js';
import { pages, PagedDomain, resolvePageSize, roundUp, yieldToEventLoop, type Segment } from './paged.js';
import { openUpdateSession } from './update-session.js';
import { readStep, stateTensor, stepTensor, validateOptions, validateStep } from './validate.js';

export type Adamw8bitName = 'adamw_8bit' | 'paged_adamw_8bit';

/** bnb's `min_8bit_size`: smaller tensors keep float32 state. */
export const MIN_8BIT_SIZE = 4096;

/** One domain, its session and its per-page buffers. */
interface Part {
  domain: PagedDomain;
  session: Session;
  mask: Float32Array[] | undefined;
  scratchP?: Float32Array;
  scratchG?: Float32Array;
}

/** Split the flat vector's tensors into the 8-bit and the float32 domain. */
export function splitTensors(size: number, ranges: readonly (readonly [number, number])[] | undefined): { q: Segment[]; f: Segment[]; qLength: number; fLength: number } {
  const q: Segment[] = [];
  const f: Segment[] = [];
  let qLength = 0;
  let fLength = 0;
  let expect = 0;
  for (const [a, b] of ranges ?? [[0, size] as const]) {
    if (a !== expect) {
      throw new TsFinetuneError('INVALID_ARGUMENT', `8-bit AdamW: paramRanges must tile [0, ${size}) in order; a range starts at ${a}, expected ${expect}`, { start: a });
    }
    expect = b;
    const n = b - a;
    if (n >= MIN_8BIT_SIZE) {
      q.push({ flat: a, dom: qLength, length: n });
      qLength += roundUp(n, STATE_BLOCKSIZE);
    } else {
      f.push({ flat: a, dom: fLength, length: n });
      fLength += n;
    }
  }
  if (expect !== size) throw new TsFinetuneError('INVALID_ARGUMENT', `8-bit AdamW: paramRanges end at ${expect}, expected ${size}`, { end: expect });
  return { q, f, qLength, fLength };
}

export class Adamw8bit implements Optimizer {
  private step_ = 0;
  private released = false;
  // 8-bit part: codes and per-block absmax, per page (bnb initialises all four to zero).
  private c1: Uint8Array[] = [];
  private c2: Uint8Array[] = [];
  private a1: Float32Array[] = [];
  private a2: Float32Array[] = [];
  // float32 part
  private m: Float32Array[] = [];
  private v: Float32Array[] = [];

  private constructor(
    readonly name: Adamw8bitName,
    readonly size: number,
    private readonly opts: OptimizerOptions,
    private readonly q: Part | undefined,
    private readonly f: Part | undefined,
  ) {
    if (q !== undefined) {
      const S = q.domain.pageSize;
      this.c1 = pages(q.domain.pageCount, () => new Uint8Array(S));
      this.c2 = pages(q.domain.pageCount, () => new Uint8Array(S));
      this.a1 = pages(q.domain.pageCount, () => new Float32Array(S / STATE_BLOCKSIZE));
      this.a2 = pages(q.domain.pageCount, () => new Float32Array(S / STATE_BLOCKSIZE));
    }
    if (f !== undefined) {
      this.m = pages(f.domain.pageCount, () => new Float32Array(f.domain.pageSize));
      this.v = pages(f.domain.pageCount, () => new Float32Array(f.domain.pageSize));
    }
  }

  static async create(name: Adamw8bitName, size: number, opts: OptimizerOptions): Promise<Adamw8bit> {
    validateOptions(name, size, opts);
    const paged = name === 'paged_adamw_8bit';
    const { q, f, qLength, fLength } = splitTensors(size, opts.paramRanges);
    const useMask = opts.decayMask !== undefined && opts.weightDecay !== 0;
    const open = async (segments: Segment[], length: number, quantised: boolean): Promise<Part | undefined> => {
      if (segments.length === 0) return undefined;
      const pageSize = resolvePageSize(length, paged, opts.pageSize, quantised ? STATE_BLOCKSIZE : 1);
      const domain = new PagedDomain(length, pageSize, segments);
      const g = new Graph(`${name}_${quantised ? 'blockwise' : '32bit'}_update`);
      if (quantised) buildAdamw8bitGraph(g, { n: pageSize, mask: useMask });
      else buildAdamwGraph(g, { n: pageSize, math: 'bnb32', mask: useMask });
      const session = await openUpdateSession(g, opts.device);
      const decayMask = opts.decayMask;
      const mask = useMask && decayMask !== undefined ? pages(domain.pageCount, () => new Float32Array(pageSize)) : undefined;
      mask?.forEach((page, i) => page.set(domain.read(decayMask!, i, () => new Float32Array(pageSize))));
      return { domain, session, mask };
    };
    const qPart = await open(q, qLength, true);
    let fPart: Part | undefined;
    try {
      fPart = await open(f, fLength, false);
    } catch (e) {
      await qPart?.session.release();
      throw e;
    }
    return new Adamw8bit(name, size, opts, qPart, fPart);
  }

  get stepCount(): number {
    return this.step_;
  }

  async step(params: Float32Array, grads: Float32Array, lr: number): Promise<void> {
    validateStep(this.name, this.size, params, grads, lr);
    if (this.released) throw new TsFinetuneError('RUNTIME_ERROR', `${this.name}: step after release()`);
    const t = this.step_ + 1;
    const o = this.opts;
    const hyper = hyperTensor(bnb32AdamwHyper({ lr, beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weightDecay }, t));
    let first = true;
    const pause = async (): Promise<void> => {
      if (!first) await yieldToEventLoop();
      first = false;
    };
    if (this.q !== undefined) {
      const { domain, session, mask } = this.q;
      const S = domain.pageSize;
      const bs = [S / STATE_BLOCKSIZE];
      for (let i = 0; i < domain.pageCount; i++) {
        await pause();
        const c1 = this.c1[i]!;
        const c2 = this.c2[i]!;
        // Padding is what bnb's loads produce past a tensor's end: g = 0 (read), c1 = 128, c2 = 0.
        for (const [at, len] of domain.gapsOf(i)) {
          c1.fill(PAD_CODE1, at, at + len);
          c2.fill(PAD_CODE2, at, at + len);
        }
        const feeds: Record<string, Tensor> = {
          param: new Tensor('float32', [S], domain.read(params, i, () => (this.q!.scratchP ??= new Float32Array(S)))),
          grad: new Tensor('float32', [S], domain.read(grads, i, () => (this.q!.scratchG ??= new Float32Array(S)))),
          state1: new Tensor('uint8', [S], c1),
          state2: new Tensor('uint8', [S], c2),
          absmax1: new Tensor('float32', bs, this.a1[i]!),
          absmax2: new Tensor('float32', bs, this.a2[i]!),
          hyper,
        };
        if (mask !== undefined) feeds['wd_mask'] = new Tensor('float32', [S], mask[i]!);
        const out = await session.run(feeds);
        domain.write(out['param_out']!.data as Float32Array, i, params);
        this.c1[i] = out['state1_out']!.data as Uint8Array;
        this.c2[i] = out['state2_out']!.data as Uint8Array;
        this.a1[i] = out['absmax1_out']!.data as Float32Array;
        this.a2[i] = out['absmax2_out']!.data as Float32Array;
      }
    }
    if (this.f !== undefined) {
      const { domain, session, mask } = this.f;
      const S = domain.pageSize;
      for (let i = 0; i < domain.pageCount; i++) {
        await pause();
        const feeds: Record<string, Tensor> = {
          param: new Tensor('float32', [S], domain.read(params, i, () => (this.f!.scratchP ??= new Float32Array(S)))),
          grad: new Tensor('float32', [S], domain.read(grads, i, () => (this.f!.scratchG ??= new Float32Array(S)))),
          exp_avg: new Tensor('float32', [S], this.m[i]!),
          exp_avg_sq: new Tensor('float32', [S], this.v[i]!),
          hyper,
        };
        if (mask !== undefined) feeds['wd_mask'] = new Tensor('float32', [S], mask[i]!);
        const out = await session.run(feeds);
        domain.write(out['param_out']!.data as Float32Array, i, params);
        this.m[i] = out['exp_avg_out']!.data as Float32Array;
        this.v[i] = out['exp_avg_sq_out']!.data as Float32Array;
      }
    }
    this.step_ = t;
  }

  /** Elements of 8-bit state and of float32 state (for docs, tests and memory estimates). */
  get stateElements(): { quantised: number; float32: number } {
    return { quantised: this.q?.domain.elements ?? 0, float32: this.f?.domain.elements ?? 0 };
  }

  /**
   * `step`; for 8-bit tensors `state1` / `state2` (uint8 codes in flat order), `absmax1` / `absmax2`
   * (float32, one per block of each tensor) and `qmap1` / `qmap2` (the two dynamic maps); for the
   * others `exp_avg` / `exp_avg_sq` (float32 in flat order). Identical for the paged variant.
   */
  stateDict(): Map<string, Tensor> {
    const out = new Map<string, Tensor>([['step', stepTensor(this.step_)]]);
    if (this.q !== undefined) {
      const d = this.q.domain;
      const n = d.elements;
      const blocks = d.length / STATE_BLOCKSIZE;
      out.set('state1', new Tensor('uint8', [n], d.compact(this.c1, new Uint8Array(n))));
      out.set('state2', new Tensor('uint8', [n], d.compact(this.c2, new Uint8Array(n))));
      out.set('absmax1', new Tensor('float32', [blocks], concatBlocks(this.a1, blocks)));
      out.set('absmax2', new Tensor('float32', [blocks], concatBlocks(this.a2, blocks)));
      out.set('qmap1', new Tensor('float32', [256], Float32Array.from(dynamicMap(true))));
      out.set('qmap2', new Tensor('float32', [256], Float32Array.from(dynamicMap(false))));
    }
    if (this.f !== undefined) {
      const n = this.f.domain.elements;
      out.set('exp_avg', new Tensor('float32', [n], this.f.domain.compact(this.m, new Float32Array(n))));
      out.set('exp_avg_sq', new Tensor('float32', [n], this.f.domain.compact(this.v, new Float32Array(n))));
    }
    return out;
  }

  loadStateDict(state: ReadonlyMap<string, Tensor>): void {
    const step = readStep(this.name, state);
    if (this.q !== undefined) {
      const d = this.q.domain;
      const n = d.elements;
      const blocks = d.length / STATE_BLOCKSIZE;
      for (const [key, signed] of [['qmap1', true], ['qmap2', false]] as const) {
        const map = stateTensor(this.name, state, key, 'float32', [256]).data;
        if (!map.every((x, i) => Object.is(x, dynamicMap(signed)[i]))) {
          throw new TsFinetuneError('CHECKPOINT_ERROR', `${this.name}.loadStateDict: '${key}' is not bitsandbytes' ${signed ? 'signed' : 'unsigned'} dynamic map`, { key });
        }
      }
      const s1 = stateTensor(this.name, state, 'state1', 'uint8', [n]).data;
      const s2 = stateTensor(this.name, state, 'state2', 'uint8', [n]).data;
      const a1 = stateTensor(this.name, state, 'absmax1', 'float32', [blocks]).data;
      const a2 = stateTensor(this.name, state, 'absmax2', 'float32', [blocks]).data;
      d.expand(s1, this.c1);
      d.expand(s2, this.c2);
      splitBlocks(a1, this.a1);
      splitBlocks(a2, this.a2);
    }
    if (this.f !== undefined) {
      const n = this.f.domain.elements;
      this.f.domain.expand(stateTensor(this.name, state, 'exp_avg', 'float32', [n]).data, this.m);
      this.f.domain.expand(stateTensor(this.name, state, 'exp_avg_sq', 'float32', [n]).data, this.v);
    }
    this.step_ = step;
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.q?.session.release();
    await this.f?.session.release();
  }
}

function concatBlocks(pagesOf: readonly Float32Array[], blocks: number): Float32Array {
  const out = new Float32Array(blocks);
  let o = 0;
  for (const p of pagesOf) {
    const take = Math.min(p.length, blocks - o);
    out.set(p.subarray(0, take), o);
    o += take;
  }
  return out;
}

function splitBlocks(values: Float32Array, pagesOf: readonly Float32Array[]): void {
  let o = 0;
  for (const p of pagesOf) {
    const take = Math.min(p.length, values.length - o);
    p.set(values.subarray(o, o + take));
    p.fill(0, take);
    o += take;
  }
}
