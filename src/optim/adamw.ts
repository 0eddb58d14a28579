// `adamw_torch` and `paged_adamw_32bit`: torch.optim.AdamW over the flat parameter vector, run as the update
// graph of kernels/adamw.ts. The moments live on the host as float32 page buffers (so a checkpoint is two
// plain vectors); each step feeds parameters, gradients and one page of state to the session and swaps in
// the state it returns. adamw_torch is one page holding the whole vector; paged_adamw_32bit uses pages of
// `pageSize` (default 1,048,576) and gives bit-identical results. On the CPU the same math runs as a host
// loop (adamw-host.ts, bit-identical to the graph, several times faster); `engine: 'graph'` forces the graph.
// HF note: transformers maps paged_adamw_32bit to bitsandbytes' 32-bit AdamW, whose update differs from
// torch's in rounding order (decay after the step, eps scaled by √bc2; see kernels/adamw.ts `bnb32`). We
// keep torch's math for both names, so switching between them changes memory use, never the numbers.
// Not here: the 8-bit optimizers (adamw-8bit.ts), paging mechanics (paged.ts).

import { TsFinetuneError } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';
import { Graph } from '../graph/index.js';
import type { Session } from '../runtime/index.js';
import { buildAdamwGraph, hyperTensor, torchAdamwHyper } from '../../kernels/adamw.js';
import type { Optimizer, OptimizerOptions } from './optimizer.js';
import { pages, PagedDomain, resolvePageSize, yieldToEventLoop } from './paged.js';
import { hostAdamwTorch, type HostAdamwFlags } from './adamw-host.js';
import { openUpdateSession } from './update-session.js';
import { readStep, stateTensor, stepTensor, validateOptions, validateStep } from './validate.js';

export type AdamwName = 'adamw_torch' | 'paged_adamw_32bit';

export class AdamW implements Optimizer {
  private step_ = 0;
  private session: Session | undefined;
  private readonly m: Float32Array[];
  private readonly v: Float32Array[];
  private readonly maskPages: Float32Array[] | undefined;
  private scratchP: Float32Array | undefined;
  private scratchG: Float32Array | undefined;
  private released = false;

  private constructor(
    readonly name: AdamwName,
    readonly size: number,
    private readonly opts: OptimizerOptions,
    private readonly domain: PagedDomain,
    session: Session | undefined,
    /** Set when the update runs on the host (adamw-host.ts) instead of a session. */
    private readonly host: HostAdamwFlags | undefined,
  ) {
    this.session = session;
    const S = domain.pageSize;
    this.m = pages(domain.pageCount, () => new Float32Array(S));
    this.v = pages(domain.pageCount, () => new Float32Array(S));
    if (opts.decayMask !== undefined && opts.weightDecay !== 0) {
      const mask = opts.decayMask;
      // Copied once into pages (padding 0): the caller may reuse its array.
      this.maskPages = pages(domain.pageCount, () => new Float32Array(S));
      this.maskPages.forEach((page, i) => page.set(domain.read(mask, i, () => new Float32Array(S))));
    }
  }

  /**
   * @example
   * const opt = await AdamW.create('adamw_torch', params.length, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 });
   * await opt.step(params, grads, 1e-3);
   */
  static async create(name: AdamwName, size: number, opts: OptimizerOptions): Promise<AdamW> {
    validateOptions(name, size, opts);
    const pageSize = resolvePageSize(size, name === 'paged_adamw_32bit', opts.pageSize);
    const domain = PagedDomain.identity(size, pageSize);
    // WebGPU has no float64 kernels: round torch's fused multiply-adds twice there (kernels/adamw.ts).
    const flags: HostAdamwFlags = { fma: opts.device !== 'webgpu', lerpSmallWeight: Math.abs(Math.fround(1 - opts.beta1)) < 0.5 };
    const onCpu = opts.device === undefined || opts.device === 'cpu';
    if ((opts.engine ?? (onCpu ? 'host' : 'graph')) === 'host') return new AdamW(name, size, opts, domain, undefined, flags);
    const g = new Graph(`${name}_update`);
    buildAdamwGraph(g, { n: pageSize, math: 'torch', mask: opts.decayMask !== undefined && opts.weightDecay !== 0, ...flags });
    const session = await openUpdateSession(g, opts.device);
    if (opts.engine === undefined && session.device === 'cpu') {
      // 'auto' found no GPU execution provider: the host loop is the faster CPU engine.
      await session.release();
      return new AdamW(name, size, opts, domain, undefined, flags);
    }
    return new AdamW(name, size, opts, domain, session, undefined);
  }

  /** Where the update runs: 'host' (a JS loop, the CPU default) or 'graph' (an ORT session). */
  get engine(): 'host' | 'graph' {
    return this.host !== undefined ? 'host' : 'graph';
  }

  get stepCount(): number {
    return this.step_;
  }

  /** Elements per page (the whole vector for adamw_torch). */
  get pageSize(): number {
    return this.domain.pageSize;
  }

  async step(params: Float32Array, grads: Float32Array, lr: number): Promise<void> {
    validateStep(this.name, this.size, params, grads, lr);
    if (this.released) throw new TsFinetuneError('RUNTIME_ERROR', `${this.name}: step after release()`);
    const t = this.step_ + 1;
    const o = this.opts;
    const h = torchAdamwHyper({ lr, beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weightDecay }, t);
    if (this.host !== undefined) await this.hostStep(params, grads, h, this.host);
    else await this.graphStep(params, grads, h);
    this.step_ = t;
  }

  private async hostStep(params: Float32Array, grads: Float32Array, h: Float32Array, flags: HostAdamwFlags): Promise<void> {
    const S = this.domain.pageSize;
    for (let i = 0; i < this.domain.pageCount; i++) {
      if (i > 0) await yieldToEventLoop(); // as the graph engine does: a paged step never holds the thread long
      const p = this.domain.read(params, i, () => (this.scratchP ??= new Float32Array(S)));
      const g = this.domain.read(grads, i, () => (this.scratchG ??= new Float32Array(S)));
      hostAdamwTorch({ p, g, m: this.m[i]!, v: this.v[i]!, mask: this.maskPages?.[i] }, h, flags);
      // A page that is a view of `params` was updated in place; a scratch page is copied back.
      if (p.buffer !== params.buffer) this.domain.write(p, i, params);
    }
  }

  private async graphStep(params: Float32Array, grads: Float32Array, h: Float32Array): Promise<void> {
    const session = this.live();
    const hyper = hyperTensor(h);
    const S = this.domain.pageSize;
    const dims = [S];
    for (let i = 0; i < this.domain.pageCount; i++) {
      if (i > 0) await yieldToEventLoop();
      const feeds: Record<string, Tensor> = {
        param: new Tensor('float32', dims, this.domain.read(params, i, () => (this.scratchP ??= new Float32Array(S)))),
        grad: new Tensor('float32', dims, this.domain.read(grads, i, () => (this.scratchG ??= new Float32Array(S)))),
        exp_avg: new Tensor('float32', dims, this.m[i]!),
        exp_avg_sq: new Tensor('float32', dims, this.v[i]!),
        hyper,
      };
      if (this.maskPages !== undefined) feeds['wd_mask'] = new Tensor('float32', dims, this.maskPages[i]!);
      const out = await session.run(feeds);
      this.domain.write(out['param_out']!.data as Float32Array, i, params);
      this.m[i] = out['exp_avg_out']!.data as Float32Array;
      this.v[i] = out['exp_avg_sq_out']!.data as Float32Array;
    }
  }

  /** `step` (int64), `exp_avg` and `exp_avg_sq` (float32 [size]): the same for paged and unpaged. */
  stateDict(): Map<string, Tensor> {
    return new Map<string, Tensor>([
      ['step', stepTensor(this.step_)],
      ['exp_avg', new Tensor('float32', [this.size], this.domain.compact(this.m, new Float32Array(this.size)))],
      ['exp_avg_sq', new Tensor('float32', [this.size], this.domain.compact(this.v, new Float32Array(this.size)))],
    ]);
  }

  loadStateDict(state: ReadonlyMap<string, Tensor>): void {
    const step = readStep(this.name, state);
    const m = stateTensor(this.name, state, 'exp_avg', 'float32', [this.size]);
    const v = stateTensor(this.name, state, 'exp_avg_sq', 'float32', [this.size]);
    this.domain.expand(m.data, this.m);
    this.domain.expand(v.data, this.v);
    this.step_ = step;
  }

  async release(): Promise<void> {
    this.released = true;
    const s = this.session;
    this.session = undefined;
    await s?.release();
  }

  private live(): Session {
    if (this.session === undefined) throw new TsFinetuneError('RUNTIME_ERROR', `${this.name}: step after release()`);
    return this.session;
  }
}
