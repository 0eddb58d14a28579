// What the CPU offers this process: model name, SIMD features, logical CPUs we may run on, and the
// physical cores among them. ORT's intra-op pool is fastest with one thread per physical core (SMT
// siblings share the FMA units a GEMM saturates), and `os.availableParallelism()` counts siblings.
// Linux: /proc/self/status (affinity), /proc/cpuinfo or /sys topology (core ids), cgroup cpu.max (quota).
// Elsewhere: availableParallelism(). Not here: choosing an execution provider (devices.ts).

import { readFileSync, readdirSync } from 'node:fs';
import * as os from 'node:os';

export interface CpuInfo {
  model: string;
  /** Feature flags relevant to ORT's kernels (x86: /proc/cpuinfo `flags`; arm: `Features`). */
  features: { avx: boolean; avx2: boolean; fma: boolean; avx512f: boolean; avx512bf16: boolean; avxvnni: boolean; f16c: boolean; neon: boolean };
  /** CPUs this process may run on (affinity and cgroup quota applied). */
  logicalCpus: number;
  /** Distinct physical cores among them. */
  physicalCores: number;
  /** Where `physicalCores` came from. */
  source: 'cpuinfo' | 'sysfs' | 'availableParallelism';
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Parse a Linux CPU list such as "0-3,8,10-11". */
export function parseCpuList(list: string): number[] {
  const out: number[] = [];
  for (const part of list.trim().split(',')) {
    if (part === '') continue;
    const [a, b] = part.split('-');
    const lo = Number(a);
    const hi = b === undefined ? lo : Number(b);
    if (!Number.isInteger(lo) || !Number.isInteger(hi)) continue;
    for (let i = lo; i <= hi; i++) out.push(i);
  }
  return out;
}

/** CPUs in this process's affinity mask, when Linux tells us. */
function allowedCpus(): Set<number> | undefined {
  const m = /^Cpus_allowed_list:\s*(.+)$/m.exec(read('/proc/self/status') ?? '');
  if (!m?.[1]) return undefined;
  const cpus = parseCpuList(m[1]);
  return cpus.length > 0 ? new Set(cpus) : undefined;
}

/** The cgroup v2 CPU quota in whole CPUs (rounded up), if one is set. */
function cgroupQuota(): number | undefined {
  const m = /^(\d+)\s+(\d+)/.exec(read('/sys/fs/cgroup/cpu.max') ?? '');
  if (!m) return undefined;
  return Math.max(1, Math.ceil(Number(m[1]) / Number(m[2])));
}

interface CpuinfoParse {
  model: string;
  flags: Set<string>;
  /** processor number → "package:core" */
  cores: Map<number, string>;
}

/** Parse /proc/cpuinfo text (exported for tests with fixtures from other machines). */
export function parseCpuinfo(text: string): CpuinfoParse {
  const res: CpuinfoParse = { model: '', flags: new Set(), cores: new Map() };
  for (const block of text.split(/\n\s*\n/)) {
    const field = (k: string): string | undefined => new RegExp(`^${k}\\s*:\\s*(.*)$`, 'm').exec(block)?.[1]?.trim();
    const proc = field('processor');
    if (proc === undefined) continue;
    res.model ||= field('model name') ?? field('Model') ?? field('Hardware') ?? '';
    if (res.flags.size === 0) for (const f of (field('flags') ?? field('Features') ?? '').split(/\s+/)) if (f) res.flags.add(f);
    const core = field('core id');
    if (core !== undefined) res.cores.set(Number(proc), `${field('physical id') ?? '0'}:${core}`);
  }
  return res;
}

function sysfsCores(cpus: Iterable<number>): Map<number, string> {
  const out = new Map<number, string>();
  for (const c of cpus) {
    const core = read(`/sys/devices/system/cpu/cpu${c}/topology/core_id`);
    const pkg = read(`/sys/devices/system/cpu/cpu${c}/topology/physical_package_id`);
    if (core !== undefined) out.set(c, `${pkg?.trim() ?? '0'}:${core.trim()}`);
  }
  return out;
}

function onlineCpus(): number[] {
  const list = read('/sys/devices/system/cpu/online');
  if (list) return parseCpuList(list);
  try {
    return readdirSync('/sys/devices/system/cpu')
      .filter((d) => /^cpu\d+$/.test(d))
      .map((d) => Number(d.slice(3)));
  } catch {
    return [];
  }
}

let cached: CpuInfo | undefined;

export function cpuInfo(): CpuInfo {
  if (cached) return cached;
  const parsed = parseCpuinfo(read('/proc/cpuinfo') ?? '');
  const allowed = allowedCpus();
  const avail = os.availableParallelism();
  const quota = cgroupQuota();
  const logicalCpus = Math.max(1, Math.min(avail, allowed?.size ?? avail, quota ?? avail));

  let source: CpuInfo['source'] = 'availableParallelism';
  let physicalCores = logicalCpus;
  const cpus = allowed ?? new Set(onlineCpus());
  let coreMap = parsed.cores;
  if (coreMap.size > 0) source = 'cpuinfo';
  else if (process.platform === 'linux') {
    coreMap = sysfsCores(cpus);
    if (coreMap.size > 0) source = 'sysfs';
  }
  if (source !== 'availableParallelism') {
    const distinct = new Set<string>();
    for (const c of cpus) {
      const id = coreMap.get(c);
      if (id !== undefined) distinct.add(id);
    }
    if (distinct.size > 0) physicalCores = Math.min(distinct.size, logicalCpus);
    else source = 'availableParallelism';
  }

  const f = parsed.flags;
  cached = {
    model: parsed.model || os.cpus()[0]?.model || 'unknown',
    features: {
      avx: f.has('avx'),
      avx2: f.has('avx2'),
      fma: f.has('fma'),
      avx512f: f.has('avx512f'),
      avx512bf16: f.has('avx512_bf16'),
      avxvnni: f.has('avx_vnni'),
      f16c: f.has('f16c'),
      neon: f.has('asimd') || f.has('neon') || process.arch === 'arm64',
    },
    logicalCpus,
    physicalCores: Math.max(1, physicalCores),
    source,
  };
  return cached;
}

/** Default ORT intra-op thread count: one per physical core this process may use. */
export function defaultThreadCount(): number {
  return cpuInfo().physicalCores;
}
