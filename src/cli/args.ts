// Command-line parsing shared by the training commands: `--flag value`, `--flag=value`, boolean
// `--flag`, and `key=value` overrides (dotted keys reach nested sections; values are parsed as YAML
// scalars, so `learning_rate=2e-4` is a number and `packing=true` a boolean).

import { promises as fsp } from 'node:fs';
import YAML from 'yaml';
import { TsFinetuneError } from '../core/errors.js';

export interface ParsedArgs {
  flags: Record<string, string | boolean>;
  overrides: Record<string, unknown>;
  positional: string[];
}

export function parseArgs(argv: readonly string[], booleanFlags: readonly string[] = []): ParsedArgs {
  const flags: Record<string, string | boolean> = {};
  const overrides: Record<string, unknown> = {};
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = (eq > 0 ? a.slice(2, eq) : a.slice(2)).replace(/-/g, '_');
      if (eq > 0) flags[name] = a.slice(eq + 1);
      else if (booleanFlags.includes(name)) flags[name] = true;
      else {
        const v = argv[i + 1];
        if (v === undefined || v.startsWith('--')) throw new TsFinetuneError('INVALID_ARGUMENT', `--${name} needs a value`);
        flags[name] = v;
        i++;
      }
    } else if (/^[A-Za-z_][\w.-]*=/.test(a)) {
      const eq = a.indexOf('=');
      setPath(overrides, a.slice(0, eq), parseScalar(a.slice(eq + 1)));
    } else positional.push(a);
  }
  return { flags, overrides, positional };
}

export function parseScalar(v: string): unknown {
  try {
    return YAML.parse(v) as unknown;
  } catch {
    return v;
  }
}

export function setPath(obj: Record<string, unknown>, dotted: string, value: unknown): void {
  const parts = dotted.split('.');
  let cur = obj;
  for (const p of parts.slice(0, -1)) {
    const next = cur[p];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) cur[p] = {};
    cur = cur[p] as Record<string, unknown>;
  }
  cur[parts[parts.length - 1]!] = value;
}

/** A YAML or JSON run config (a mapping at the top). */
export async function readRunConfig(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch {
    throw new TsFinetuneError('FILE_NOT_FOUND', `Config file ${file} not found`, { file });
  }
  let v: unknown;
  try {
    v = YAML.parse(text);
  } catch (e) {
    throw new TsFinetuneError('INVALID_CONFIG', `${file}: ${(e as Error).message}`, { file });
  }
  if (v === null || v === undefined) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new TsFinetuneError('INVALID_CONFIG', `${file} must hold a mapping of keys`, { file });
  return v as Record<string, unknown>;
}

export function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k];
    if (v && typeof v === 'object' && !Array.isArray(v) && cur && typeof cur === 'object' && !Array.isArray(cur)) {
      out[k] = deepMerge(cur as Record<string, unknown>, v as Record<string, unknown>);
    } else out[k] = v;
  }
  return out;
}
