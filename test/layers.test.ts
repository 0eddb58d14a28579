// The layer map of DESIGN.md, enforced: every import / export-from / dynamic import() / require() in
// src/**/*.ts and kernels/**/*.ts is read with TypeScript's own pre-processor (so comments and strings
// don't fool it), resolved, and checked against the folders its layer may import. A layer may also import
// whatever its allowed layers may (transitive closure). Only src/runtime may load onnxruntime-*.
// kernels/ may import graph, onnx, core; in src/ only quant, optim, peft, models, train, autodiff, nn may
// import kernels. src/index.ts may import everything.
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * DESIGN.md "Layers and their direction", with the amendments of docs/architecture.md: models also
 * import quant, autodiff and runtime (a loaded model runs itself), peft imports models (adapters wrap a
 * model), optim imports runtime (its update graphs run as sessions), kernels import quant (codebooks)
 * and autodiff (to register the gradients of the functions they define).
 */
const DIRECT: Record<string, string[]> = {
  core: [],
  onnx: ['core'],
  graph: ['core', 'onnx'],
  autodiff: ['graph'],
  nn: ['graph'],
  models: ['nn', 'io', 'quant', 'autodiff', 'runtime'],
  quant: ['core', 'graph'],
  peft: ['models', 'nn', 'quant', 'io'],
  optim: ['graph', 'quant', 'runtime'],
  io: ['core'],
  runtime: ['core', 'onnx'],
  data: ['core', 'io'],
  tokenizers: ['core', 'io'],
  train: ['core', 'onnx', 'graph', 'autodiff', 'nn', 'models', 'quant', 'peft', 'optim', 'io', 'runtime', 'data', 'tokenizers'],
  cli: ['train', 'core', 'onnx', 'graph', 'autodiff', 'nn', 'models', 'quant', 'peft', 'optim', 'io', 'runtime', 'data', 'tokenizers'],
  kernels: ['graph', 'onnx', 'core', 'quant', 'autodiff'],
};
const KERNEL_IMPORTERS = new Set(['quant', 'optim', 'peft', 'models', 'train', 'autodiff', 'nn']);
const ORT_LAYER = 'runtime';

function closure(layer: string): Set<string> {
  const out = new Set<string>([layer]);
  const todo = [...(DIRECT[layer] ?? [])];
  while (todo.length > 0) {
    const l = todo.pop()!;
    if (out.has(l)) continue;
    out.add(l);
    todo.push(...(DIRECT[l] ?? []));
  }
  out.delete('kernels'); // kernels access has its own rule, never inherited
  if (layer === 'kernels' || KERNEL_IMPORTERS.has(layer)) out.add('kernels');
  return out;
}

/** 'src/nn/linear.ts' → 'nn'; 'src/index.ts' → 'index'; 'kernels/x.ts' → 'kernels'; else undefined. */
function layerOf(rel: string): string | undefined {
  const parts = rel.split(path.sep);
  if (parts[0] === 'kernels') return 'kernels';
  if (parts[0] !== 'src') return undefined;
  if (parts.length === 2) return parts[1] === 'index.ts' || parts[1] === 'index.js' ? 'index' : `src-root:${parts[1]}`;
  return parts[1];
}

async function tsFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  let entries;
  try {
    entries = await fsp.readdir(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await tsFiles(p)));
    else if (/\.(ts|mts|cts)$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Every layer violation under `root` (a repo root with src/ and kernels/), as readable lines. */
export async function checkLayers(root: string): Promise<string[]> {
  const problems: string[] = [];
  const files = [...(await tsFiles(path.join(root, 'src'))), ...(await tsFiles(path.join(root, 'kernels')))];
  for (const file of files) {
    const rel = path.relative(root, file);
    const from = layerOf(rel)!;
    if (from.startsWith('src-root:')) {
      problems.push(`${rel}: a file directly in src/ other than index.ts is outside the layer map`);
      continue;
    }
    if (from !== 'index' && !(from in DIRECT)) {
      problems.push(`${rel}: folder '${from}' is not in the layer map of DESIGN.md`);
      continue;
    }
    const text = await fsp.readFile(file, 'utf8');
    const info = ts.preProcessFile(text, true, true);
    for (const imp of info.importedFiles) {
      const spec = imp.fileName;
      const line = text.slice(0, imp.pos).split('\n').length;
      const where = `${rel}:${line}`;
      if (/^onnxruntime-/.test(spec)) {
        if (from !== ORT_LAYER) problems.push(`${where} imports '${spec}': only src/${ORT_LAYER} may load onnxruntime`);
        continue;
      }
      if (!spec.startsWith('.')) continue; // node: builtins and other packages
      const target = path.relative(root, path.resolve(path.dirname(file), spec));
      const to = layerOf(target);
      if (to === undefined || to === from) continue; // outside src/kernels (e.g. package.json), or same layer
      if (from === 'index') continue;
      if (to === 'index' || to.startsWith('src-root:')) {
        problems.push(`${where} imports ${target}: layers must not import the package root`);
        continue;
      }
      if (!closure(from).has(to)) {
        const may = [...closure(from)].filter((l) => l !== from).sort();
        problems.push(`${where} imports ${target}: ${from} → ${to} is not allowed (${from} may import: ${may.join(', ') || 'nothing'})`);
      }
    }
  }
  return problems;
}

describe('layer map', () => {
  it('every import in src/ and kernels/ follows DESIGN.md', async () => {
    const problems = await checkLayers(path.resolve(__dirname, '..'));
    expect(problems, problems.join('\n')).toEqual([]);
  });

  it('the checker catches upward, skipped and onnxruntime imports (synthetic tree)', async () => {
    const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'tsft-layers-'));
    const put = async (rel: string, text: string): Promise<void> => {
      await fsp.mkdir(path.dirname(path.join(root, rel)), { recursive: true });
      await fsp.writeFile(path.join(root, rel), text);
    };
    try {
      await put('src/core/a.ts', "import { x } from '../io/b.js';\n// import '../train/t.js' in a comment is ignored\n");
      await put('src/io/b.ts', "export const x = 1;\nimport type { G } from '../graph/g.js';\n");
      await put('src/autodiff/ok.ts', "import '../graph/g.js';\nimport '../core/a.js';\nimport '../onnx/o.js';\nimport '../../kernels/k.js';\n");
      await put('src/models/m.ts', "export * from '../core/a.js';\nconst ort = await import('onnxruntime-node');\n");
      await put('src/runtime/r.ts', "import * as ort from 'onnxruntime-node';\n");
      await put('src/data/d.ts', "const k = require('../../kernels/k.js');\nimport '../index.js';\n");
      await put('src/index.ts', "export * from './train/t.js';\n");
      await put('src/train/t.ts', "import '../cli/c.js';\n");
      await put('src/weird/w.ts', '');
      await put('kernels/k.ts', "import '../src/graph/g.js';\nimport '../src/nn/n.js';\n");
      const problems = await checkLayers(root);
      const has = (re: RegExp): boolean => problems.some((p) => re.test(p));
      expect(has(/src\/core\/a\.ts:1 imports src\/io\/b\.js: core → io/)).toBe(true);
      expect(has(/src\/io\/b\.ts:2 .* io → graph/)).toBe(true);
      expect(has(/src\/models\/m\.ts:2 imports 'onnxruntime-node'/)).toBe(true);
      expect(has(/src\/data\/d\.ts:1 .* data → kernels/)).toBe(true);
      expect(has(/src\/data\/d\.ts:2 .* package root/)).toBe(true);
      expect(has(/src\/train\/t\.ts:1 .* train → cli/)).toBe(true);
      expect(has(/folder 'weird' is not in the layer map/)).toBe(true);
      expect(has(/kernels\/k\.ts:2 .* kernels → nn/)).toBe(true);
      // Allowed: autodiff's transitive imports and kernels, runtime's onnxruntime, the root index, export-from
      // core in models, and an import mentioned in a comment.
      expect(problems.filter((p) => /^(src\/autodiff|src\/runtime|src\/index\.ts|src\/models\/m\.ts:1|src\/core\/a\.ts:2)/.test(p))).toEqual([]);
      expect(problems).toHaveLength(8);
    } finally {
      await fsp.rm(root, { recursive: true, force: true });
    }
  });
});
