// A minimal protobuf wire-format writer: varints (32/64-bit, negative int64 as 10 bytes), fixed32 floats,
// length-delimited strings / bytes / nested messages, and packed repeated ints and floats.
// It writes into one growable buffer (doubling), so a training graph with 100k nodes encodes without
// per-byte array pushes or per-message allocations.
// Not here: the ONNX message layouts (encode.ts) or reading (proto-reader.ts).
// Follows https://protobuf.dev/programming-guides/encoding/.

const enum Wire {
  VARINT = 0,
  FIXED64 = 1,
  LEN = 2,
  FIXED32 = 5,
}

const TWO_32 = 4294967296;
const utf8 = new TextEncoder();

/** Bytes a non-negative integer (≤ 2^53) takes as a varint. */
export function varintSize(n: number): number {
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x200000) return 3;
  if (n < 0x10000000) return 4;
  let size = 4;
  let v = Math.floor(n / 0x10000000);
  while (v > 0) {
    size++;
    v = Math.floor(v / 0x80);
  }
  return size;
}

/** Bytes an int64 (number or bigint, possibly negative) takes as a varint. */
function int64Size(v: number | bigint): number {
  if (typeof v === 'bigint') {
    let u = BigInt.asUintN(64, v);
    let size = 1;
    while (u >= 0x80n) {
      u >>= 7n;
      size++;
    }
    return size;
  }
  return v < 0 ? 10 : varintSize(v);
}

export class ProtoWriter {
  private buf: Uint8Array;
  private view: DataView;
  pos = 0;

  constructor(initialBytes = 1 << 16) {
    this.buf = new Uint8Array(Math.max(16, initialBytes));
    this.view = new DataView(this.buf.buffer);
  }

  /** Make room for `n` more bytes. */
  ensure(n: number): void {
    const need = this.pos + n;
    if (need <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < need) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  /** The bytes written so far (a copy trimmed to size, so the big scratch buffer is not kept alive). */
  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }

  // ---- raw values -------------------------------------------------------------------------------

  private rawVarint(n: number): void {
    // Callers guarantee 0 ≤ n ≤ 2^53 and have ensured 10 bytes.
    const b = this.buf;
    let p = this.pos;
    while (n >= 0x80000000) {
      b[p++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    while (n >= 0x80) {
      b[p++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    b[p++] = n;
    this.pos = p;
  }

  /** int64 as protobuf encodes it: two's complement, so negatives take 10 bytes. */
  private rawInt64(v: number | bigint): void {
    if (typeof v === 'number' && v >= 0) {
      this.rawVarint(v);
      return;
    }
    let lo: number;
    let hi: number;
    if (typeof v === 'bigint') {
      const u = BigInt.asUintN(64, v);
      lo = Number(u & 0xffffffffn);
      hi = Number(u >> 32n);
    } else {
      lo = v >>> 0; // ToUint32 is exact modulo 2^32 for safe integers
      hi = Math.floor(v / TWO_32) >>> 0;
    }
    const b = this.buf;
    let p = this.pos;
    while (hi !== 0 || lo > 0x7f) {
      b[p++] = (lo & 0x7f) | 0x80;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    b[p++] = lo;
    this.pos = p;
  }

  private tag(field: number, wire: Wire): void {
    this.rawVarint(field * 8 + wire);
  }

  // ---- fields -----------------------------------------------------------------------------------

  /** A non-negative varint field (enum, uint, non-negative int32/int64). */
  uint(field: number, n: number): void {
    this.ensure(20);
    this.tag(field, Wire.VARINT);
    this.rawVarint(n);
  }

  /** A signed int64 field (negative values take 10 bytes, as protobuf's int64). */
  int64(field: number, v: number | bigint): void {
    this.ensure(20);
    this.tag(field, Wire.VARINT);
    this.rawInt64(v);
  }

  float(field: number, f: number): void {
    this.ensure(10);
    this.tag(field, Wire.FIXED32);
    this.view.setFloat32(this.pos, f, true);
    this.pos += 4;
  }

  string(field: number, s: string): void {
    const n = s.length;
    this.ensure(10 + n);
    this.tag(field, Wire.LEN);
    // ASCII fast path: value names and op types are ASCII, and one length byte is the common case.
    const lenPos = this.pos;
    this.rawVarint(n);
    const b = this.buf;
    let p = this.pos;
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      b[p++] = c;
    }
    if (i === n) {
      this.pos = p;
      return;
    }
    this.pos = lenPos;
    this.bytesNoTag(utf8.encode(s));
  }

  bytes(field: number, data: Uint8Array): void {
    this.ensure(10);
    this.tag(field, Wire.LEN);
    this.bytesNoTag(data);
  }

  private bytesNoTag(data: Uint8Array): void {
    this.ensure(10 + data.length);
    this.rawVarint(data.length);
    this.buf.set(data, this.pos);
    this.pos += data.length;
  }

  /** Packed repeated int64 (dims, ints attributes). Empty arrays write nothing, as protobuf does. */
  packedInt64(field: number, values: readonly (number | bigint)[]): void {
    if (values.length === 0) return;
    let size = 0;
    for (const v of values) size += int64Size(v);
    this.ensure(20 + size);
    this.tag(field, Wire.LEN);
    this.rawVarint(size);
    for (const v of values) this.rawInt64(v);
  }

  /** Packed repeated float (fixed32). */
  packedFloat(field: number, values: readonly number[]): void {
    if (values.length === 0) return;
    const size = values.length * 4;
    this.ensure(20 + size);
    this.tag(field, Wire.LEN);
    this.rawVarint(size);
    const v = this.view;
    let p = this.pos;
    for (const f of values) {
      v.setFloat32(p, f, true);
      p += 4;
    }
    this.pos = p;
  }

  /**
   * Open a nested message. Its length prefix is written before its contents are known: we reserve
   * `reserve` bytes (1 suits small messages; pass more for big ones) and `end` moves the body if the real
   * length needs a different number of bytes — one memmove per message, never per byte. begin/end rather
   * than a callback, so encoding a big graph allocates no closure per message.
   * Returns the mark to pass to `end`.
   */
  begin(field: number, reserve = 1): number {
    this.ensure(10 + reserve);
    this.tag(field, Wire.LEN);
    const lenPos = this.pos;
    this.pos += reserve;
    // lenPos and reserve packed in one number: reserve ≤ 5 fits in 3 bits.
    return lenPos * 8 + reserve;
  }

  end(mark: number): void {
    const reserve = mark % 8;
    const lenPos = (mark - reserve) / 8;
    const start = lenPos + reserve;
    const len = this.pos - start;
    const need = varintSize(len);
    if (need !== reserve) {
      this.ensure(need - reserve);
      this.buf.copyWithin(lenPos + need, start, start + len);
    }
    this.pos = lenPos;
    this.rawVarint(len);
    this.pos = lenPos + need + len;
  }

  /** A nested message written by `write` (convenience over begin/end for small, rare messages). */
  message(field: number, write: () => void, reserve = 1): void {
    const mark = this.begin(field, reserve);
    write();
    this.end(mark);
  }
}
