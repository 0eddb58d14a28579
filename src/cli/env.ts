// `ts-finetune env`: what a bug report needs — versions, which execution providers can start here (and
// why not), CPU model / features / cores and the thread count ORT will use, memory, and cache paths.
// `--json` prints the same as one JSON object; `--no-probe` skips starting sessions (fast, file checks only).
// Like `transformers-cli env` / `python -m torch.utils.collect_env`. Never prints token values.

import { existsSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { hfHome, hubCacheDir, hubEndpoint, hubToken, isOffline } from '../io/hf-cache.js';
import { DEVICES, ORT_TELEMETRY_ENV, cpuInfo, optOutOfOrtTelemetry, ortVersion, probeExecutionProviders, quickCheckExecutionProvider, type EpProbe } from '../runtime/index.js';
import { moduleFile } from '../runtime/module-file.js';

const USAGE = `Usage: ts-finetune env [--json] [--no-probe]

Prints versions, execution providers (and why one cannot start), CPU features, threads, memory, caches.
  --json       one JSON object instead of text
  --no-probe   do not start a session on each execution provider (installed-file checks only)
`;

/** Our own package.json, found by walking up from this file (src/cli/ or dist/). */
function ownVersion(): string | undefined {
  let dir = path.dirname(moduleFile());
  for (let i = 0; i < 5; i++) {
    const p = path.join(dir, 'package.json');
    if (existsSync(p)) {
      try {
        const pkg = JSON.parse(readFileSync(p, 'utf8')) as { name?: string; version?: string };
        if (pkg.name === 'ts-finetune') return pkg.version;
      } catch {
        // keep walking
      }
    }
    dir = path.dirname(dir);
  }
  return undefined;
}

interface EnvReport {
  tsFinetune: string | undefined;
  node: string;
  platform: string;
  onnxruntimeNode: string | undefined;
  /** ORT_DISABLE_TELEMETRY in force, and whether the user set it (else ts-finetune did: runtime/telemetry.ts). */
  onnxruntimeTelemetry: { disableValue: string; setByUser: boolean };
  executionProviders: { device: string; available: boolean | null; reason?: string; ms?: number }[];
  cpu: { model: string; features: string[]; physicalCores: number; logicalCpus: number; ortThreads: number; coreSource: string };
  memory: { totalBytes: number; freeBytes: number };
  caches: { hfHome: string; hubCache: string; datasetsCache: string; hubEndpoint: string; offline: boolean; tokenSet: boolean };
}

async function collect(probe: boolean): Promise<EnvReport> {
  const cpu = cpuInfo();
  const setByUser = process.env[ORT_TELEMETRY_ENV] !== undefined;
  const telemetry = { disableValue: optOutOfOrtTelemetry(), setByUser };
  let eps: EnvReport['executionProviders'];
  if (probe) {
    const res: EpProbe[] = await probeExecutionProviders();
    eps = res.map((p) => ({ device: p.device, available: p.available, ...(p.reason ? { reason: p.reason } : {}), ms: Math.round(p.ms) }));
  } else {
    eps = DEVICES.map((d) => {
      const q = quickCheckExecutionProvider(d);
      return q.possible ? { device: d, available: null } : { device: d, available: false, reason: q.reason };
    });
  }
  const datasets = process.env['HF_DATASETS_CACHE'] || path.join(hfHome(), 'datasets');
  return {
    tsFinetune: ownVersion(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    onnxruntimeNode: ortVersion(),
    onnxruntimeTelemetry: telemetry,
    executionProviders: eps,
    cpu: {
      model: cpu.model,
      features: Object.entries(cpu.features)
        .filter(([, v]) => v)
        .map(([k]) => k),
      physicalCores: cpu.physicalCores,
      logicalCpus: cpu.logicalCpus,
      ortThreads: cpu.physicalCores,
      coreSource: cpu.source,
    },
    memory: { totalBytes: os.totalmem(), freeBytes: os.freemem() },
    caches: {
      hfHome: hfHome(),
      hubCache: hubCacheDir(),
      datasetsCache: path.resolve(datasets),
      hubEndpoint: hubEndpoint(),
      offline: isOffline(),
      tokenSet: hubToken() !== undefined,
    },
  };
}

const gib = (n: number): string => `${(n / 2 ** 30).toFixed(1)} GiB`;

function format(r: EnvReport): string {
  const lines = [
    `ts-finetune       ${r.tsFinetune ?? '(unknown)'}`,
    `Node.js           ${r.node} (${r.platform})`,
    `onnxruntime-node  ${r.onnxruntimeNode ?? '(not installed)'}`,
    `  telemetry       ${ORT_TELEMETRY_ENV}=${r.onnxruntimeTelemetry.disableValue} (${r.onnxruntimeTelemetry.setByUser ? 'your setting' : "ts-finetune's default: off"})`,
    '',
    'Execution providers:',
  ];
  for (const e of r.executionProviders) {
    const state = e.available === true ? `available (${e.ms} ms to start and run)` : e.available === null ? 'not probed (files present)' : 'unavailable';
    lines.push(`  ${e.device.padEnd(7)} ${state}`);
    if (e.reason) lines.push(`          ${e.reason}`);
  }
  lines.push(
    '',
    `CPU               ${r.cpu.model}`,
    `  features        ${r.cpu.features.join(' ') || '(none detected)'}`,
    `  cores           ${r.cpu.physicalCores} physical, ${r.cpu.logicalCpus} logical usable (from ${r.cpu.coreSource})`,
    `  ORT threads     ${r.cpu.ortThreads} (default intraOpNumThreads; set createSession({ threads }))`,
    `Memory            ${gib(r.memory.totalBytes)} total, ${gib(r.memory.freeBytes)} free`,
    '',
    'Caches:',
    `  HF_HOME         ${r.caches.hfHome}`,
    `  hub cache       ${r.caches.hubCache}`,
    `  datasets cache  ${r.caches.datasetsCache}`,
    `  hub endpoint    ${r.caches.hubEndpoint}${r.caches.offline ? ' (HF_HUB_OFFLINE: offline)' : ''}`,
    `  token           ${r.caches.tokenSet ? 'set' : 'not set'}`,
  );
  return `${lines.join('\n')}\n`;
}

export async function envCommand(argv: string[]): Promise<number> {
  let json = false;
  let probe = true;
  for (const a of argv) {
    if (a === '--json') json = true;
    else if (a === '--no-probe') probe = false;
    else if (a === '--help' || a === '-h') {
      process.stdout.write(USAGE);
      return 0;
    } else {
      process.stderr.write(`ts-finetune env: unknown option '${a}'\n\n${USAGE}`);
      return 2;
    }
  }
  const report = await collect(probe);
  process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : format(report));
  return 0;
}
