// Packing tokenized examples into fixed-length rows with best-fit decreasing, as TRL's `packing_strategy=
// "bfd"` (trl data_utils.pack_dataset): examples longer than the row are truncated, sorted by length
// (longest first, stable), and each goes into the open row with the least room that still fits it.
// Position ids restart at 0 for every document, and the document ids keep attention inside a document
// (REFERENCE.md: a packed batch's gradients equal the sum of its documents' separate gradients).

import type { TokenizedExample } from './collator.js';

export interface PackedExample extends TokenizedExample {
  positionIds: number[];
  documentIds: number[];
}

export function packBfd(examples: readonly TokenizedExample[], maxLength: number): PackedExample[] {
  const docs = examples
    .map((e, i) => ({
      i,
      inputIds: e.inputIds.slice(0, maxLength),
      labels: e.labels.slice(0, maxLength),
    }))
    .filter((d) => d.inputIds.length > 0);
  // Stable sort: equal lengths keep dataset order (Python's sort is stable too).
  docs.sort((a, b) => b.inputIds.length - a.inputIds.length || a.i - b.i);
  const bins: { room: number; docs: typeof docs }[] = [];
  for (const d of docs) {
    let best = -1;
    for (let b = 0; b < bins.length; b++) {
      const room = bins[b]!.room;
      if (room >= d.inputIds.length && (best < 0 || room < bins[best]!.room)) best = b;
    }
    if (best < 0) bins.push({ room: maxLength - d.inputIds.length, docs: [d] });
    else {
      bins[best]!.room -= d.inputIds.length;
      bins[best]!.docs.push(d);
    }
  }
  return bins.map((bin) => {
    const row: PackedExample = { inputIds: [], labels: [], positionIds: [], documentIds: [], sourceRows: [] };
    bin.docs.forEach((d, k) => {
      row.sourceRows!.push(...(examples[d.i]!.sourceRows ?? [d.i]));
      row.inputIds.push(...d.inputIds);
      // Targets that would cross into the next document are dropped by the collator (document ids).
      row.labels.push(...d.labels);
      for (let t = 0; t < d.inputIds.length; t++) {
        row.positionIds.push(t);
        row.documentIds.push(k);
      }
    });
    return row;
  });
}
