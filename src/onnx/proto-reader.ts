// A minimal protobuf wire-format reader, the mirror of proto-writer.ts: varints (int64 as number when
// it is a safe integer, else bigint), fixed32 / fixed64, length-delimited fields, packed or unpacked
// repeated ints and floats, and skipping of fields we do not model.
// Not here: ONNX message layouts (decode.ts).

import { TsFinetuneError } from '../core/errors.js';

const utf8 = new TextDecoder('utf-8', { fatal: false });

export class ProtoReader {
  readonly buf: Uint8Array;
  private readonly view: DataView;
  pos: number;
  readonly end: number;

  constructor(buf: Uint8Array, start = 0, end = buf.length) {
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = start;
    this.end = end;
  }

  private fail(what: string): never {
    throw new TsFinetuneError('CORRUPT_FILE', `Malformed protobuf at byte ${this.pos}: ${what}`, { offset: this.pos });
  }

  /** A varint as an unsigned number (exact below 2^53). */
  uint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail('truncated varint');
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 128;
    }
    return this.fail('varint longer than 10 bytes');
  }

  /** A varint as a two's-complement int64: a number when safe, else a bigint. */
  int64(): number | bigint {
    const start = this.pos;
    let lo = 0;
    let hi = 0;
    let shift = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail('truncated varint');
      const b = this.buf[this.pos++]!;
      if (shift < 28) lo |= (b & 0x7f) << shift;
      else if (shift === 28) {
        lo |= (b & 0x0f) << 28;
        hi |= (b & 0x7f) >>> 4;
      } else hi |= (b & 0x7f) << (shift - 32);
      shift += 7;
      if (b < 0x80) {
        const v = BigInt.asIntN(64, (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0));
        return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
      }
    }
    this.pos = start;
    return this.fail('varint longer than 10 bytes');
  }

  float(): number {
    if (this.pos + 4 > this.end) this.fail('truncated fixed32');
    const f = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return f;
  }

  /** Start and end of a length-delimited field's payload; advances past it. */
  span(): [number, number] {
    const len = this.uint();
    const start = this.pos;
    if (start + len > this.end) this.fail(`length ${len} overruns the message`);
    this.pos = start + len;
    return [start, start + len];
  }

  /** Payload copy (so decoded tensors do not pin the whole model buffer and are 8-byte aligned). */
  bytes(): Uint8Array {
    const [s, e] = this.span();
    // %TypedArray%.prototype.slice copies even when buf is a Node Buffer (whose own slice() is a view).
    return Uint8Array.prototype.slice.call(this.buf, s, e);
  }

  string(): string {
    const [s, e] = this.span();
    return utf8.decode(this.buf.subarray(s, e));
  }

  /** A nested message: a reader over its payload. */
  sub(): ProtoReader {
    const [s, e] = this.span();
    return new ProtoReader(this.buf, s, e);
  }

  /** Repeated int64 that may arrive packed (wire 2) or one per tag (wire 0). */
  repeatedInt64(wire: number, out: (number | bigint)[]): void {
    if (wire === 0) {
      out.push(this.int64());
      return;
    }
    const r = this.sub();
    while (r.pos < r.end) out.push(r.int64());
  }

  /** Repeated float that may arrive packed (wire 2) or one per tag (wire 5). */
  repeatedFloat(wire: number, out: number[]): void {
    if (wire === 5) {
      out.push(this.float());
      return;
    }
    const r = this.sub();
    while (r.pos < r.end) out.push(r.float());
  }

  /** Repeated double (TensorProto.double_data), packed or not. */
  repeatedDouble(wire: number, out: number[]): void {
    const one = (r: ProtoReader): void => {
      if (r.pos + 8 > r.end) r.fail('truncated fixed64');
      out.push(r.view.getFloat64(r.pos, true));
      r.pos += 8;
    };
    if (wire === 1) one(this);
    else {
      const r = this.sub();
      while (r.pos < r.end) one(r);
    }
  }

  /** Read the next tag: [field number, wire type]. */
  tag(): [number, number] {
    const t = this.uint();
    return [Math.floor(t / 8), t & 7];
  }

  skip(wire: number): void {
    switch (wire) {
      case 0:
        this.uint();
        break;
      case 1:
        this.pos += 8;
        break;
      case 2:
        this.span();
        break;
      case 5:
        this.pos += 4;
        break;
      default:
        this.fail(`unsupported wire type ${wire}`);
    }
    if (this.pos > this.end) this.fail('field overruns the message');
  }
}
