// Paging for optimizer updates: the elements an update graph walks (its "domain") cut into pages of a fixed
// size, one session of that size run once per page. Optimizer state lives in host-side page buffers that
// are handed to the session as inputs and replaced by its outputs, so neither ORT's CPU arena nor a GPU
// execution provider ever holds more than one page of state (plus that page's intermediates).
// "Paged" in bitsandbytes means state in CUDA unified memory that the driver evicts to the host under
// pressure; here the host is always the home of the state and the device sees one page at a time, which
// bounds the device footprint deterministically. Results do not depend on the page size: every kernel is
// elementwise or per 256-element block, and pages are whole blocks.
// The domain is either the flat parameter vector itself (AdamW) or a re-arrangement of parts of it
// (8-bit AdamW: each tensor padded to whole blocks); `Segment`s map domain positions onto flat ones and
// every other position is padding, read as 0.
// Not here: the update math (kernels/), the optimizers (adamw.ts, adamw-8bit.ts).

import { TsFinetuneError } from '../core/errors.js';

/** Default elements per page of a paged optimizer (4 MiB of float32 per state array). */
export const DEFAULT_PAGE_SIZE = 1 << 20;
/** Pages are whole 256-element blocks (the 8-bit state's block size). */
export const PAGE_ALIGN = 256;

/** domain[dom .. dom + length) holds flat[flat .. flat + length). */
export interface Segment {
  flat: number;
  dom: number;
  length: number;
}

interface Piece {
  /** Start in the flat vector. */
  flat: number;
  /** Start inside the page. */
  at: number;
  length: number;
}

export const roundUp = (n: number, m: number): number => Math.ceil(n / m) * m;

/**
 * The page size to use for a domain of `length` elements: the whole domain when unpaged, else the
 * requested size (a positive multiple of 256, default 1,048,576), shrunk to the domain when it is smaller.
 */
export function resolvePageSize(length: number, paged: boolean, requested: number | undefined, align = 1): number {
  if (requested !== undefined && (!Number.isSafeInteger(requested) || requested < PAGE_ALIGN || requested % PAGE_ALIGN !== 0)) {
    throw new TsFinetuneError('INVALID_ARGUMENT', `Optimizer option pageSize must be a positive multiple of ${PAGE_ALIGN}, got ${requested}`, {
      pageSize: requested,
    });
  }
  if (!paged) return roundUp(Math.max(length, 1), align);
  return Math.min(requested ?? DEFAULT_PAGE_SIZE, roundUp(Math.max(length, 1), PAGE_ALIGN));
}

export class PagedDomain {
  readonly pageCount: number;
  private readonly pieces: Piece[][];
  private readonly gaps: [number, number][][];

  /**
   * @param length   domain elements, padding included
   * @param pageSize elements per page (the last page is zero-padded beyond `length`)
   * @param segments the domain positions that hold flat elements, ascending and disjoint
   */
  constructor(
    readonly length: number,
    readonly pageSize: number,
    readonly segments: readonly Segment[],
  ) {
    this.pageCount = Math.ceil(length / pageSize);
    this.pieces = [];
    this.gaps = [];
    let s = 0;
    for (let i = 0; i < this.pageCount; i++) {
      const lo = i * pageSize;
      const hi = lo + pageSize;
      const pieces: Piece[] = [];
      while (s < segments.length && segments[s]!.dom + segments[s]!.length <= lo) s++;
      for (let k = s; k < segments.length && segments[k]!.dom < hi; k++) {
        const seg = segments[k]!;
        const a = Math.max(seg.dom, lo);
        const b = Math.min(seg.dom + seg.length, hi);
        if (b > a) pieces.push({ flat: seg.flat + (a - seg.dom), at: a - lo, length: b - a });
      }
      const gaps: [number, number][] = [];
      let at = 0;
      for (const p of pieces) {
        if (p.at > at) gaps.push([at, p.at - at]);
        at = p.at + p.length;
      }
      if (at < pageSize) gaps.push([at, pageSize - at]);
      this.pieces.push(pieces);
      this.gaps.push(gaps);
    }
  }

  /** A domain that is the flat vector [0, size) itself. */
  static identity(size: number, pageSize: number): PagedDomain {
    return new PagedDomain(size, pageSize, size > 0 ? [{ flat: 0, dom: 0, length: size }] : []);
  }

  /** Padding positions of page `i` as [offset, length] pairs. */
  gapsOf(i: number): readonly (readonly [number, number])[] {
    return this.gaps[i]!;
  }

  /**
   * Page `i` of `flat`: a view when the page is one stretch of the flat vector (no copy), otherwise
   * `scratch` with the page's elements copied in and padding zeroed.
   */
  read(flat: Float32Array, i: number, scratch: () => Float32Array): Float32Array {
    const pieces = this.pieces[i]!;
    const only = pieces[0];
    if (pieces.length === 1 && only!.at === 0 && only!.length === this.pageSize) return flat.subarray(only!.flat, only!.flat + this.pageSize);
    const out = scratch();
    for (const [at, len] of this.gaps[i]!) out.fill(0, at, at + len);
    for (const p of pieces) out.set(flat.subarray(p.flat, p.flat + p.length), p.at);
    return out;
  }

  /** Copy page `i`'s elements (not its padding) from `page` into `flat`. */
  write(page: Float32Array, i: number, flat: Float32Array): void {
    for (const p of this.pieces[i]!) flat.set(page.subarray(p.at, p.at + p.length), p.flat);
  }

  /** The segment elements of per-page arrays, concatenated in domain order (padding dropped). */
  compact<T extends Float32Array | Uint8Array>(pages: readonly T[], out: T): T {
    let o = 0;
    this.pieces.forEach((pieces, i) => {
      for (const p of pieces) {
        out.set(pages[i]!.subarray(p.at, p.at + p.length), o);
        o += p.length;
      }
    });
    return out;
  }

  /** The inverse of `compact`: scatter `values` into per-page arrays (padding untouched). */
  expand<T extends Float32Array | Uint8Array>(values: T, pages: readonly T[]): void {
    let o = 0;
    this.pieces.forEach((pieces, i) => {
      for (const p of pieces) {
        pages[i]!.set(values.subarray(o, o + p.length), p.at);
        o += p.length;
      }
    });
  }

  /** Elements held by segments (what `compact` returns). */
  get elements(): number {
    return this.segments.reduce((s, g) => s + g.length, 0);
  }
}

/** `count` per-page buffers of `size` elements each (zeroed). */
export function pages<T>(count: number, make: () => T): T[] {
  return Array.from({ length: count }, make);
}

/**
 * Let the event loop run between pages: an in-process `session.run` holds the JS thread, so a paged step
 * stalls timers and I/O for one page at a time instead of the whole update.
 */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
