// A readable text form of a graph, one node per line, for snapshot tests and debugging:
//   %out: float32[2,4] = MatMul(%x, %w) {transB=1}
import type { Graph } from './graph.js';
import type { AttrValue } from './value.js';

function attrText(a: AttrValue): string {
  switch (a.kind) {
    case 'tensor':
      return `<${a.value.dtype}[${a.value.dims.join(',')}]>`;
    case 'ints':
    case 'floats':
      return `[${a.value.join(',')}]`;
    case 'strings':
      return `[${a.value.map((s) => JSON.stringify(s)).join(',')}]`;
    case 'string':
      return JSON.stringify(a.value);
    default:
      return String(a.value);
  }
}

export function dumpGraph(g: Graph): string {
  const lines: string[] = [`graph ${g.name}`];
  for (const v of g.inputs) lines.push(`  input ${v}`);
  for (const [name, e] of g.initializers) lines.push(`  init %${name}: ${e.tensor.dtype}[${e.tensor.dims.join(',')}]${e.external ? ' (external)' : ''}`);
  for (const n of g.nodes) {
    const outs = n.outputs.map(String).join(', ');
    const ins = n.inputs.map((v) => (v ? `%${v.name}` : '_')).join(', ');
    const attrs = Object.entries(n.attrs);
    const at = attrs.length ? ` {${attrs.map(([k, a]) => `${k}=${attrText(a)}`).join(', ')}}` : '';
    const dom = n.domain ? `${n.domain}.` : '';
    lines.push(`  ${outs} = ${dom}${n.opType}(${ins})${at}`);
  }
  for (const o of g.outputs) lines.push(`  output %${o.name}`);
  return lines.join('\n');
}
