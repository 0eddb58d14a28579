// A TensorBoard event-file writer with no dependency: TFRecord framing (u64 length, masked CRC-32C of the
// length, data, masked CRC-32C of the data) around hand-encoded `Event` protobufs; the first record
// carries file_version "brain.Event:2", the rest scalar `Summary` values (tag + simple_value), which
// TensorBoard's Scalars tab reads. File name as torch's SummaryWriter: events.out.tfevents.<s>.<host>.<pid>.<n>.
// Follows tensorflow `core/util/event.proto`, `core/framework/summary.proto`, `core/lib/io/record_writer.cc`.
// Not here: images, histograms, text or hparams summaries.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { TsFinetuneError } from '../core/errors.js';
import { crc32c, maskCrc32c } from './crc32c.js';

// ---- protobuf wire format, just what Event and Summary need ----

class ProtoWriter {
  private chunks: number[] = [];

  private varint(v: number): void {
    // Safe integers only (< 2^53), so plain arithmetic instead of 64-bit shifts.
    while (v >= 0x80) {
      this.chunks.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    this.chunks.push(v);
  }
  private tag(fieldNumber: number, wireType: number): void {
    this.varint(fieldNumber * 8 + wireType);
  }
  double(fieldNumber: number, v: number): this {
    this.tag(fieldNumber, 1);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, true);
    this.chunks.push(...b);
    return this;
  }
  float(fieldNumber: number, v: number): this {
    this.tag(fieldNumber, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.chunks.push(...b);
    return this;
  }
  uint(fieldNumber: number, v: number): this {
    this.tag(fieldNumber, 0);
    this.varint(v);
    return this;
  }
  bytes(fieldNumber: number, data: Uint8Array): this {
    this.tag(fieldNumber, 2);
    this.varint(data.length);
    for (const x of data) this.chunks.push(x);
    return this;
  }
  string(fieldNumber: number, s: string): this {
    return this.bytes(fieldNumber, new TextEncoder().encode(s));
  }
  finish(): Uint8Array {
    return Uint8Array.from(this.chunks);
  }
}

export interface ScalarEvent {
  /** Seconds since the epoch. */
  wallTime: number;
  step: number;
  values: Readonly<Record<string, number>>;
}

/** `Event { wall_time = 1; step = 2; file_version = 3 | summary = 5 }` bytes. Zero step is omitted, as proto3 does. */
export function encodeEvent(e: { wallTime: number; step?: number; fileVersion?: string; values?: Readonly<Record<string, number>> }): Uint8Array {
  const w = new ProtoWriter().double(1, e.wallTime);
  if (e.step !== undefined && e.step !== 0) w.uint(2, e.step);
  if (e.fileVersion !== undefined) w.string(3, e.fileVersion);
  if (e.values !== undefined) {
    const summary = new ProtoWriter();
    // Summary { repeated Value value = 1 }, Value { string tag = 1; float simple_value = 2 }
    for (const [tag, v] of Object.entries(e.values)) summary.bytes(1, new ProtoWriter().string(1, tag).float(2, v).finish());
    w.bytes(5, summary.finish());
  }
  return w.finish();
}

/** One TFRecord: u64 LE length, masked CRC of those 8 bytes, the data, masked CRC of the data. */
export function tfRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + 4 + data.length + 4);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(data.length), true);
  dv.setUint32(8, maskCrc32c(crc32c(out.subarray(0, 8))), true);
  out.set(data, 12);
  dv.setUint32(12 + data.length, maskCrc32c(crc32c(data)), true);
  return out;
}

/** Split a TFRecord file into its records, checking both CRCs of each (CORRUPT_FILE if one fails). */
export function readTfRecords(buf: Uint8Array, file = '<buffer>'): Uint8Array[] {
  const out: Uint8Array[] = [];
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let off = 0;
  while (off < buf.length) {
    if (off + 12 > buf.length) throw corrupt(file, off, 'truncated record header');
    const len = Number(dv.getBigUint64(off, true));
    if (dv.getUint32(off + 8, true) !== maskCrc32c(crc32c(buf.subarray(off, off + 8)))) throw corrupt(file, off, 'bad length CRC');
    if (off + 12 + len + 4 > buf.length) throw corrupt(file, off, 'truncated record');
    const data = buf.subarray(off + 12, off + 12 + len);
    if (dv.getUint32(off + 12 + len, true) !== maskCrc32c(crc32c(data))) throw corrupt(file, off, 'bad data CRC');
    out.push(data);
    off += 12 + len + 4;
  }
  return out;
}

function corrupt(file: string, offset: number, why: string): TsFinetuneError {
  return new TsFinetuneError('CORRUPT_FILE', `${file}: ${why} at byte ${offset}.`, { file, offset });
}

// torch's SummaryWriter numbers the files a process opens, from 0.
let fileCounter = 0;

export interface TensorBoardWriterOptions {
  /** Clock in milliseconds (tests pass a fixed one). */
  now?: () => number;
  hostname?: string;
  pid?: number;
  /** Appended to the file name, as SummaryWriter's filename_suffix. */
  filenameSuffix?: string;
}

/**
 * Appends scalar summaries to a new event file in `logDir`. Writes are synchronous and go straight to
 * the file, so TensorBoard sees them live and a crash loses nothing already logged.
 *
 * @example
 * const tb = TensorBoardWriter.open('out/logs');
 * tb.addScalars({ 'train/loss': 1.23, 'train/learning_rate': 2e-4 }, 10);
 * tb.close();
 */
export class TensorBoardWriter {
  readonly file: string;
  private fd: number | null;
  private readonly now: () => number;

  private constructor(file: string, fd: number, now: () => number) {
    this.file = file;
    this.fd = fd;
    this.now = now;
  }

  static open(logDir: string, options: TensorBoardWriterOptions = {}): TensorBoardWriter {
    const now = options.now ?? Date.now;
    const secs = String(Math.floor(now() / 1000)).padStart(10, '0');
    const name = `events.out.tfevents.${secs}.${options.hostname ?? os.hostname()}.${options.pid ?? process.pid}.${fileCounter++}${options.filenameSuffix ?? ''}`;
    const file = path.join(logDir, name);
    let fd: number;
    try {
      fs.mkdirSync(logDir, { recursive: true });
      fd = fs.openSync(file, 'a');
    } catch (e) {
      throw new TsFinetuneError('RUNTIME_ERROR', `Cannot create TensorBoard event file ${file}: ${(e as Error).message}`, { file }, { cause: e });
    }
    const w = new TensorBoardWriter(file, fd, now);
    w.write(encodeEvent({ wallTime: now() / 1000, fileVersion: 'brain.Event:2' }));
    return w;
  }

  /** One scalar at `step`. */
  addScalar(tag: string, value: number, step: number, wallTime?: number): void {
    this.addScalars({ [tag]: value }, step, wallTime);
  }

  /** Several scalars at `step`, in one event. Values are stored as float32 (TensorBoard's simple_value). */
  addScalars(values: Readonly<Record<string, number>>, step: number, wallTime?: number): void {
    if (!Number.isSafeInteger(step) || step < 0) {
      throw new TsFinetuneError('INVALID_ARGUMENT', `TensorBoard step must be an integer >= 0, got ${step}.`, { step });
    }
    if (Object.keys(values).length === 0) return;
    this.write(encodeEvent({ wallTime: wallTime ?? this.now() / 1000, step, values }));
  }

  /** Force the bytes to disk. */
  flush(): void {
    if (this.fd !== null) fs.fsyncSync(this.fd);
  }

  close(): void {
    if (this.fd === null) return;
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
    this.fd = null;
  }

  private write(data: Uint8Array): void {
    if (this.fd === null) throw new TsFinetuneError('RUNTIME_ERROR', `TensorBoard writer for ${this.file} is closed.`, { file: this.file });
    fs.writeSync(this.fd, tfRecord(data));
  }
}
