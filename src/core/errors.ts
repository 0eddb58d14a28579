// Typed errors with a stable `code`, so callers (and the CLI) can branch on what went wrong without
// parsing messages. Every message names the file / row / field / config key at fault.
// Add a code here when a new kind of failure appears; never rename one (users match on them).

export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'INVALID_CONFIG'
  | 'UNKNOWN_CONFIG_KEY'
  | 'FILE_NOT_FOUND'
  | 'CORRUPT_FILE'
  | 'UNSUPPORTED_DTYPE'
  | 'SHAPE_MISMATCH'
  | 'MISSING_TENSOR'
  | 'UNSUPPORTED_MODEL'
  | 'HUB_OFFLINE'
  | 'HUB_ERROR'
  | 'DATASET_ERROR'
  | 'COLUMN_NOT_FOUND'
  | 'SCHEMA_MISMATCH'
  | 'MAP_FUNCTION_FAILED'
  | 'TOKENIZER_ERROR'
  | 'CHAT_TEMPLATE_ERROR'
  | 'GRAPH_ERROR'
  | 'MISSING_GRADIENT_RULE'
  | 'RUNTIME_ERROR'
  | 'EP_UNAVAILABLE'
  | 'QUANT_ERROR'
  | 'PEFT_ERROR'
  | 'TRAINING_ERROR'
  | 'NON_FINITE_LOSS'
  | 'CHECKPOINT_ERROR'
  | 'INTERRUPTED';

export class TsFinetuneError extends Error {
  readonly code: ErrorCode;
  /** Structured context (file, row, key, expected/found …) for programs; the message has it for people. */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TsFinetuneError';
    this.code = code;
    this.details = details;
  }
}

export function isTsFinetuneError(e: unknown, code?: ErrorCode): e is TsFinetuneError {
  return e instanceof TsFinetuneError && (code === undefined || e.code === code);
}

/** Levenshtein-closest candidate, for "did you mean …" in unknown-key errors. */
export function closestName(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  const a = name.toLowerCase();
  for (const c of candidates) {
    const b = c.toLowerCase();
    const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
      let diag = prev[0]!;
      prev[0] = i;
      for (let j = 1; j <= b.length; j++) {
        const tmp = prev[j]!;
        prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
        diag = tmp;
      }
    }
    const d = prev[b.length]!;
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}
