// JSON as Python's `json` module writes it: NaN, Infinity and -Infinity appear as bare tokens (a
// diverging grad_norm is logged as Infinity), and `sort_keys=True, indent=2` is how HF writes
// trainer_state.json. JS's JSON cannot read or write those tokens, so both directions live here.
// Not here: Python's float repr (1e-05 vs 0.00001) — parsers read both, so we keep JS's.

export interface PyJsonOptions {
  /** Spaces per level; 0 = one line (JSON Lines). */
  indent?: number;
  /** Sort object keys at every level, as `json.dumps(sort_keys=True)`. */
  sortKeys?: boolean;
}

function num(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return 'Infinity';
  if (n === -Infinity) return '-Infinity';
  return JSON.stringify(n);
}

/** Serialise like Python's json.dumps (allow_nan=True). `undefined` members are dropped, as JSON.stringify does. */
export function stringifyPyJson(value: unknown, options: PyJsonOptions = {}): string {
  const indent = options.indent ?? 0;
  const walk = (v: unknown, depth: number): string | undefined => {
    if (v === null) return 'null';
    if (typeof v === 'number') return num(v);
    if (typeof v === 'string' || typeof v === 'boolean') return JSON.stringify(v);
    if (typeof v === 'bigint') return v.toString();
    if (typeof v !== 'object') return undefined;
    const toJSON = (v as { toJSON?: () => unknown }).toJSON;
    if (typeof toJSON === 'function') return walk(toJSON.call(v), depth);
    const pad = indent > 0 ? '\n' + ' '.repeat(indent * (depth + 1)) : '';
    const end = indent > 0 ? '\n' + ' '.repeat(indent * depth) : '';
    if (Array.isArray(v)) {
      if (v.length === 0) return '[]';
      return '[' + v.map((x) => pad + (walk(x, depth + 1) ?? 'null')).join(',') + end + ']';
    }
    let keys = Object.keys(v);
    if (options.sortKeys === true) keys = keys.sort();
    const parts: string[] = [];
    for (const k of keys) {
      const s = walk((v as Record<string, unknown>)[k], depth + 1);
      if (s !== undefined) parts.push(pad + JSON.stringify(k) + (indent > 0 ? ': ' : ':') + s);
    }
    return parts.length === 0 ? '{}' : '{' + parts.join(',') + end + '}';
  };
  return walk(value, 0) ?? 'null';
}

// A string no JSON file holds in practice, standing in for a bare token until the reviver swaps it back.
const SENTINEL = '\u0000pyjson:';

/** Parse JSON that may contain Python's bare NaN / Infinity / -Infinity tokens. */
export function parsePyJson(text: string): unknown {
  let out = '';
  let i = 0;
  let changed = false;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '"') {
      // Copy a whole string literal, escapes included.
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    const m = /^(-?Infinity|NaN)/.exec(text.slice(i, i + 9));
    if (m !== null) {
      out += JSON.stringify(SENTINEL + m[1]!);
      i += m[1]!.length;
      changed = true;
      continue;
    }
    out += c;
    i++;
  }
  if (!changed) return JSON.parse(text);
  return JSON.parse(out, (_k, v: unknown) =>
    typeof v === 'string' && v.startsWith(SENTINEL) ? Number(v.slice(SENTINEL.length)) : v,
  );
}
