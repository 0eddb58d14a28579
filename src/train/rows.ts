// Reading training rows from whatever users pass: a Dataset (src/data), a plain array of records, or any
// object with numRows/get(i). Column names are reported for error messages.

import { TsFinetuneError } from '../core/errors.js';

export type Row = Record<string, unknown>;
export interface RowSource {
  numRows: number;
  get(i: number): unknown;
  columnNames?: string[];
}
export type RowsInput = readonly Row[] | RowSource;

export function readRows(input: RowsInput | undefined | null, what: string): { rows: Row[]; columns: string[] } {
  if (input === undefined || input === null) return { rows: [], columns: [] };
  let rows: Row[];
  if (Array.isArray(input)) rows = [...(input as Row[])];
  else if (typeof (input as RowSource).get === 'function' && typeof (input as RowSource).numRows === 'number') {
    const src = input as RowSource;
    rows = Array.from({ length: src.numRows }, (_, i) => src.get(i) as Row);
  } else {
    throw new TsFinetuneError('INVALID_ARGUMENT', `${what} must be a Dataset or an array of rows`);
  }
  const columns = Array.isArray(input) ? Object.keys(rows[0] ?? {}) : ((input as RowSource).columnNames ?? Object.keys(rows[0] ?? {}));
  return { rows, columns };
}
