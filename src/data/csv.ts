// CSV parsing (RFC 4180: quoted fields, doubled quotes, newlines inside quotes, CRLF) fed chunk by chunk,
// and the column typing datasets gets from pandas.read_csv: a column whose every non-empty cell is an
// integer is int64, else if every cell is a number float64, else if every cell is True/False bool,
// else string; empty cells are null. Not here: file access (row-sources.ts).

export class CsvParser {
  private field = '';
  private row: string[] = [];
  private inQuotes = false;
  private quoteSeen = false; // just closed a quote: a second " means a literal quote
  private afterCr = false;
  line = 1;
  rowLine = 1;

  constructor(private readonly delimiter = ',') {}

  /** Feed text; complete rows go to `emit` with the line they started on. */
  push(text: string, emit: (row: string[], line: number) => void): void {
    const d = this.delimiter;
    for (let i = 0; i < text.length; i++) {
      const ch = text[i]!;
      if (this.afterCr) {
        this.afterCr = false;
        if (ch === '\n') continue;
      }
      if (this.inQuotes) {
        if (ch === '"') {
          this.inQuotes = false;
          this.quoteSeen = true;
        } else {
          if (ch === '\n') this.line++;
          this.field += ch;
        }
        continue;
      }
      if (ch === '"') {
        if (this.quoteSeen) this.field += '"';
        this.inQuotes = true;
        this.quoteSeen = false;
        continue;
      }
      this.quoteSeen = false;
      if (ch === d) {
        this.row.push(this.field);
        this.field = '';
      } else if (ch === '\n' || ch === '\r') {
        this.afterCr = ch === '\r';
        this.row.push(this.field);
        this.field = '';
        emit(this.row, this.rowLine);
        this.row = [];
        this.line++;
        this.rowLine = this.line;
      } else {
        this.field += ch;
      }
    }
  }

  /** End of input: the last row if it had no trailing newline. */
  end(emit: (row: string[], line: number) => void): void {
    if (this.field !== '' || this.row.length > 0) {
      this.row.push(this.field);
      emit(this.row, this.rowLine);
    }
    this.row = [];
    this.field = '';
  }
}

const INT = /^[+-]?\d+$/;
const FLOAT = /^[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|nan|NaN|inf|Inf|infinity|Infinity)$/;
const BOOL = new Set(['True', 'False', 'TRUE', 'FALSE', 'true', 'false']);

export type CsvKind = 'int' | 'float' | 'bool' | 'string';

/** pandas-like kind of a column from its raw cells ('' is missing and does not vote). */
export function csvColumnKind(cells: readonly string[]): CsvKind {
  let kind: CsvKind | undefined;
  for (const c of cells) {
    if (c === '') continue;
    if (kind === undefined || kind === 'int') {
      if (INT.test(c) && Number.isSafeInteger(Number(c))) kind = 'int';
      else if (FLOAT.test(c)) kind = 'float';
      else if (kind === undefined && BOOL.has(c)) kind = 'bool';
      else return 'string';
    } else if (kind === 'float') {
      if (!FLOAT.test(c)) return 'string';
    } else if (kind === 'bool') {
      if (!BOOL.has(c)) return 'string';
    }
  }
  return kind ?? 'string';
}

function parseFloatCell(c: string): number {
  if (/^[+-]?(inf|infinity)$/i.test(c)) return c.startsWith('-') ? -Infinity : Infinity;
  return Number(c);
}

export function convertCsvCells(cells: readonly string[], kind: CsvKind): (string | number | boolean | null)[] {
  switch (kind) {
    case 'int':
      return cells.map((c) => (c === '' ? null : Number(c)));
    case 'float':
      return cells.map((c) => (c === '' ? null : parseFloatCell(c)));
    case 'bool':
      return cells.map((c) => (c === '' ? null : c.toLowerCase() === 'true'));
    default:
      return cells.map((c) => (c === '' ? null : c));
  }
}
