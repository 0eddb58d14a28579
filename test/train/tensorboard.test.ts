import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import protobuf from 'protobufjs';
import { afterAll, describe, expect, it } from 'vitest';
import { isTsFinetuneError } from '../../src/core/errors.js';
import { crc32c, maskCrc32c, unmaskCrc32c } from '../../src/train/crc32c.js';
import { TensorBoardWriter, readTfRecords } from '../../src/train/tensorboard.js';

// TensorFlow's event.proto / summary.proto, trimmed to the fields a scalar log uses.
const PROTO = `
syntax = "proto3";
message Event {
  double wall_time = 1;
  int64 step = 2;
  oneof what { string file_version = 3; bytes graph_def = 4; Summary summary = 5; }
}
message Summary {
  message Value { string node_name = 7; string tag = 1; oneof value { float simple_value = 2; bytes image = 4; } }
  repeated Value value = 1;
}`;
const root = protobuf.parse(PROTO).root;
const Event = root.lookupType('Event');

// Bit-at-a-time CRC-32C, independent of the table version under test.
function crc32cSlow(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

const dir = mkdtempSync(path.join(tmpdir(), 'tsft-tb-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('crc32c', () => {
  it('matches the published check values', () => {
    expect(crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(0))).toBe(0);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa); // RFC 3720 B.4: 32 bytes of zeros
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    const rnd = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7919 + 13) & 0xff);
    expect(crc32c(rnd)).toBe(crc32cSlow(rnd));
    // incremental
    expect(crc32c(rnd.subarray(500), crc32c(rnd.subarray(0, 500)))).toBe(crc32c(rnd));
  });

  it('masks as TFRecord does', () => {
    const c = 0xe3069283;
    const rot = ((c >>> 15) | (c << 17)) >>> 0;
    expect(maskCrc32c(c)).toBe((rot + 0xa282ead8) % 2 ** 32);
    expect(unmaskCrc32c(maskCrc32c(c))).toBe(c);
  });
});

describe('TensorBoardWriter', () => {
  it('writes an event file TensorBoard can read: framing, CRCs, Event and Summary protobufs', () => {
    let t = 1_700_000_000_123;
    const w = TensorBoardWriter.open(path.join(dir, 'logs'), { now: () => t, hostname: 'box', pid: 4242 });
    expect(path.basename(w.file)).toMatch(/^events\.out\.tfevents\.1700000000\.box\.4242\.\d+$/);
    t += 1000;
    w.addScalars({ 'train/loss': 2.5, 'train/learning_rate': 2e-4 }, 10);
    w.addScalar('train/loss', 1.1, 20, 1_700_000_100.5);
    w.addScalar('eval/loss', 0.3, 0);
    w.addScalar('train/grad_norm', Infinity, 2 ** 40);
    w.close();
    w.close(); // idempotent

    const buf = new Uint8Array(readFileSync(w.file));
    // Walk the framing by hand with the independent CRC.
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const records: Uint8Array[] = [];
    for (let off = 0; off < buf.length; ) {
      const len = Number(dv.getBigUint64(off, true));
      expect(dv.getUint32(off + 8, true)).toBe(maskCrc32c(crc32cSlow(buf.subarray(off, off + 8))));
      const data = buf.subarray(off + 12, off + 12 + len);
      expect(dv.getUint32(off + 12 + len, true)).toBe(maskCrc32c(crc32cSlow(data)));
      records.push(data);
      off += 16 + len;
    }
    expect(records.length).toBe(5);
    expect(readTfRecords(buf).length).toBe(5);

    const events = records.map((r) => Event.toObject(Event.decode(r), { longs: Number, defaults: true }) as any);
    expect(events[0]).toMatchObject({ fileVersion: 'brain.Event:2', wallTime: 1_700_000_000.123 });
    expect(events[1].step).toBe(10);
    expect(events[1].wallTime).toBe(1_700_000_001.123);
    expect(events[1].summary.value.map((v: any) => [v.tag, v.simpleValue])).toEqual([
      ['train/loss', 2.5],
      ['train/learning_rate', Math.fround(2e-4)],
    ]);
    expect(events[2]).toMatchObject({ step: 20, wallTime: 1_700_000_100.5 });
    expect(events[2].summary.value[0]).toMatchObject({ tag: 'train/loss', simpleValue: Math.fround(1.1) });
    expect(events[3].step).toBe(0);
    expect(events[3].summary.value[0].tag).toBe('eval/loss');
    expect(events[4].step).toBe(2 ** 40);
    expect(events[4].summary.value[0].simpleValue).toBe(Infinity);
  });

  it('numbers files like SummaryWriter and refuses bad steps', () => {
    const a = TensorBoardWriter.open(path.join(dir, 'two'), { now: () => 0, hostname: 'h', pid: 1 });
    const b = TensorBoardWriter.open(path.join(dir, 'two'), { now: () => 0, hostname: 'h', pid: 1 });
    expect(a.file).not.toBe(b.file);
    expect(readdirSync(path.join(dir, 'two')).length).toBe(2);
    expect(() => a.addScalar('x', 1, -1)).toThrow(/step/);
    expect(() => a.addScalar('x', 1, 1.5)).toThrow(/step/);
    a.close();
    b.close();
    expect(() => a.addScalar('x', 1, 1)).toThrow(/closed/);
  });

  it('detects a corrupted record', () => {
    const w = TensorBoardWriter.open(path.join(dir, 'bad'), { now: () => 0, hostname: 'h', pid: 1 });
    w.addScalar('loss', 1, 1);
    w.close();
    const buf = new Uint8Array(readFileSync(w.file));
    buf[buf.length - 6]! ^= 1;
    writeFileSync(w.file, buf);
    try {
      readTfRecords(new Uint8Array(readFileSync(w.file)), w.file);
      expect.unreachable();
    } catch (e) {
      expect(isTsFinetuneError(e, 'CORRUPT_FILE')).toBe(true);
    }
  });
});
