// adapter_config.json exactly as PEFT writes it: Python's `json.dumps(d, indent=2, sort_keys=True)` with
// no trailing newline (peft `config.py` save_pretrained). Python prints floats with a decimal point
// (`"lora_dropout": 0.0`), which JS's JSON cannot tell apart from ints, so float-typed fields are wrapped
// in `PyFloat`. Non-ASCII is escaped as \uXXXX (json.dumps' ensure_ascii=True).
// Not here: parsing (plain JSON.parse reads these files), NaN/Infinity (never in an adapter config).

import { pythonFloatRepr } from '../quant/index.js';

/** A number Python holds as a float (printed `0.0`, `0.05`, `1e-05`). */
export class PyFloat {
  constructor(readonly value: number) {}
}

function str(s: string): string {
  return JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Python's json.dumps(value, indent=2, sort_keys=True) (separators ', ' / ': ' as Python uses with indent). */
export function pythonJsonDumps(value: unknown, indent = 2): string {
  const walk = (v: unknown, depth: number): string => {
    if (v === null || v === undefined) return 'null';
    if (v instanceof PyFloat) return pythonFloatRepr(v.value);
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw new Error(`pythonJsonDumps: ${v} has no JSON form`);
      return Number.isInteger(v) ? String(v) : pythonFloatRepr(v);
    }
    if (typeof v === 'boolean') return v ? 'true' : 'false';
    if (typeof v === 'string') return str(v);
    const pad = '\n' + ' '.repeat(indent * (depth + 1));
    const end = '\n' + ' '.repeat(indent * depth);
    if (Array.isArray(v)) {
      if (v.length === 0) return '[]';
      return '[' + v.map((x) => pad + walk(x, depth + 1)).join(',') + end + ']';
    }
    if (typeof v === 'object') {
      const keys = Object.keys(v).sort();
      if (keys.length === 0) return '{}';
      return '{' + keys.map((k) => pad + str(k) + ': ' + walk((v as Record<string, unknown>)[k], depth + 1)).join(',') + end + '}';
    }
    throw new Error(`pythonJsonDumps: cannot serialise a ${typeof v}`);
  };
  return walk(value, 0);
}
