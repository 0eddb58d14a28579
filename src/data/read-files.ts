// Eager reads of a list of data files of one builder into one Arrow table, with a progress line
// ("Generating train split"), as datasets' builders do when they prepare a split.
// Parquet and Arrow files go column-wise straight to Arrow; json/csv/text go through row chunks and
// the TableBuilder, so types widen across chunks and files and disagreements name the file and line.
// Not here: which files (data-files.ts), formats themselves (row-sources.ts, parquet-read.ts).

import type { Table } from 'apache-arrow';
import { readArrowFile } from './disk.js';
import { readParquetTable } from './parquet-read.js';
import { ProgressLine } from './progress.js';
import { csvAllRows, fileRows, type BuilderName, type ReaderOptions } from './row-sources.js';
import { TableBuilder } from './table-builder.js';
import { concatTables } from './table-concat.js';

export async function readFilesTable(builder: BuilderName, files: readonly string[], opts: ReaderOptions & { desc?: string } = {}): Promise<Table> {
  const bar = new ProgressLine(undefined, { desc: opts.desc ?? 'Generating split' });
  let done = 0;
  const tick = (n: number): void => {
    done += n;
    bar.update(done);
  };
  try {
    if (builder === 'parquet') return await readParquetTable(files, tick);
    if (builder === 'arrow') {
      const tables: Table[] = [];
      for (const f of files) {
        const t = await readArrowFile(f);
        tables.push(t);
        tick(t.numRows);
      }
      return concatTables(tables, { widen: true, label: (k) => `file ${files[k]}` });
    }
    const tb = new TableBuilder();
    for (const f of files) {
      if (builder === 'csv') {
        const { rows, where } = await csvAllRows(f, opts);
        const n = opts.chunkRows ?? 10_000;
        for (let s = 0; s < rows.length; s += n) tb.addRows(rows.slice(s, s + n), (k) => where(s + k));
        tick(rows.length);
        continue;
      }
      for await (const chunk of fileRows(builder, f, opts)) {
        tb.addRows(chunk.rows, chunk.where);
        tick(chunk.rows.length);
      }
    }
    return tb.finish();
  } finally {
    bar.close();
  }
}
