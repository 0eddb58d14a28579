// Physical-core detection (the default ORT thread count): SMT siblings counted once, affinity honoured.
import * as os from 'node:os';
import { describe, expect, it } from 'vitest';
import { cpuInfo, defaultThreadCount, parseCpuList, parseCpuinfo } from '../../src/runtime/cpu-info.js';

/** 2 cores × 2 hyper-threads, as /proc/cpuinfo lists them on an SMT x86 host. */
const SMT_CPUINFO = [0, 1, 2, 3]
  .map(
    (p) => `processor\t: ${p}
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) CPU
physical id\t: 0
core id\t\t: ${p % 2}
flags\t\t: fpu sse avx avx2 fma avx512f f16c`,
  )
  .join('\n\n');

describe('cpu info', () => {
  it('parses cpu lists and cpuinfo, counting SMT siblings once', () => {
    expect(parseCpuList('0-3,8,10-11\n')).toEqual([0, 1, 2, 3, 8, 10, 11]);
    const p = parseCpuinfo(SMT_CPUINFO);
    expect(p.model).toBe('Intel(R) Xeon(R) CPU');
    expect(new Set(p.cores.values()).size).toBe(2);
    expect(p.cores.get(2)).toBe('0:0');
    expect(p.flags.has('avx512f')).toBe(true);
  });

  it('reports this machine sensibly', () => {
    const c = cpuInfo();
    expect(c.physicalCores).toBeGreaterThanOrEqual(1);
    expect(c.physicalCores).toBeLessThanOrEqual(c.logicalCpus);
    expect(c.logicalCpus).toBeLessThanOrEqual(os.availableParallelism());
    expect(defaultThreadCount()).toBe(c.physicalCores);
    if (process.platform === 'linux' && process.arch === 'x64') expect(c.source).not.toBe('availableParallelism');
  });
});
