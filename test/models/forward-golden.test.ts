import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { readFileSync } from 'node:fs';
import { Graph, op, toModelProto } from '../../src/graph/index.js';
import { encodeModel } from '../../src/onnx/encode.js';
import { readSafetensors } from '../../src/io/index.js';
import { readConfig } from '../../src/models/config.js';
import { loadWeights } from '../../src/models/weights.js';
import { createBuildContext } from '../../src/models/build-context.js';
import { decoderHidden, lmHead } from '../../src/models/decoder.js';
import { causalLmLoss, shiftLabels } from '../../src/nn/loss.js';

const MODELS = ['llama-mha', 'llama-gqa', 'llama-tied', 'llama3-rope', 'qwen2', 'qwen3', 'mistral', 'llama-bf16', 'llama-sharded'];

describe('decoder forward vs torch golden', () => {
  for (const name of MODELS) {
    it(name, async () => {
      const dir = `test/fixtures/models/${name}`;
      const cfg = await readConfig(dir);
      const w = await loadWeights(dir, cfg);
      const gold = await readSafetensors(`test/fixtures/golden/forward-${name}.safetensors`);
      const meta = JSON.parse(readFileSync(`test/fixtures/golden/forward-${name}.json`, 'utf8'));
      const ids = gold.get('input_ids')!;
      const [B, T] = ids.dims as [number, number];
      const g = new Graph('fwd');
      const inputIds = g.input('input_ids', 'int64', [B, T]);
      const attentionMask = g.input('attention_mask', 'int64', [B, T]);
      const positionIds = g.input('position_ids', 'int64', [B, T]);
      const targets = g.input('targets', 'int64', [B, T]);
      const ctx = createBuildContext(g, { dense: w.dense, quantized: new Map() });
      const h = decoderHidden(ctx, cfg, { inputIds, attentionMask, positionIds }, { maxPosition: T });
      const logits = lmHead(ctx, cfg, h);
      const l = causalLmLoss(logits, targets);
      g.output(logits, 'logits');
      g.output(op.Div(l.lossSum, l.count), 'loss');
      const { model } = toModelProto(g);
      const sess = await ort.InferenceSession.create(encodeModel(model));
      const labels = gold.get('labels')!.data as BigInt64Array;
      const pos = BigInt64Array.from({ length: B * T }, (_, i) => BigInt(i % T));
      const out = await sess.run({
        input_ids: new ort.Tensor('int64', ids.data as BigInt64Array, [B, T]),
        attention_mask: new ort.Tensor('int64', gold.get('attention_mask')!.data as BigInt64Array, [B, T]),
        position_ids: new ort.Tensor('int64', pos, [B, T]),
        targets: new ort.Tensor('int64', shiftLabels(Array.from(labels, Number), B, T), [B, T]),
      });
      const want = gold.get('logits')!.data as Float32Array;
      const got = out.logits!.data as Float32Array;
      const mask = gold.get('attention_mask')!.data as BigInt64Array;
      let maxErr = 0;
      for (let i = 0; i < got.length; i++) {
        const row = Math.floor(i / cfg.vocabSize);
        if (mask[row] === 0n) continue; // padded query rows: HF leaves them unspecified
        maxErr = Math.max(maxErr, Math.abs(got[i]! - want[i]!));
      }
      expect(maxErr).toBeLessThan(1e-4);
      expect(Math.abs((out.loss!.data as Float32Array)[0]! - meta.loss)).toBeLessThan(1e-4);
    });
  }
});
