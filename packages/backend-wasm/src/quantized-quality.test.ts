/**
 * The quality of quantized weights on WASM (the kernels that multiply them as stored): logits of the 15M Llama shape
 * (seeded random weights) against float32, and stories260K's greedy continuations against float32.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { InvalidOptionError, type DecoderOnlyModel } from '@kvt/core';
import { loadModel } from '@kvt/loaders';
import { STORY_PROMPTS } from '@kvt/models/testing';
import { LlamaModel, greedyCommonPrefix, logitsAgreement, randomLlamaParameters, type LlamaConfig } from '@kvt/models';
import { activate } from './index.js';

const fixtures = process.env.KVT_FIXTURES ?? resolve(dirname(fileURLToPath(import.meta.url)), '../../../../shared/fixtures');
const stories = join(fixtures, 'stories260K', 'stories260K.bin');

describe('quantized weights on wasm: quality against float32', () => {
  beforeAll(async () => {
    await activate();
  });

  it('the 15M shape: q8_0 logits within 2 % (relative L2, median step) of float32 and the same greedy token at ≥ 90 % of steps (random weights: near ties); q4_0 within 25 % (4 bits on uniform random weights, the hardest case)', async () => {
    // llama2.c's 15M shape with a 4096-token vocabulary (the projection rows are what matter, not their count)
    const c: LlamaConfig = { architecture: 'llama', vocabSize: 4096, hiddenSize: 288, intermediateSize: 768, numLayers: 6, numHeads: 6, numKvHeads: 6, maxPositions: 256, specialTokens: { bos: 1, eos: [2] } };
    const before = tf.memory().numTensors;
    const fp32 = LlamaModel.fromParameters(c, randomLlamaParameters(c, 15, { tied: false }));
    try {
      for (const [format, bound] of [['q8_0', 0.02], ['q4_0', 0.25]] as const) {
        const q = LlamaModel.fromParameters(c, randomLlamaParameters(c, 15, { tied: false }), { weights: format });
        try {
          const r = await logitsAgreement(fp32, q, [1, 300, 2000, 45, 17], 48);
          expect(r.medianRelativeError, `${format} ${JSON.stringify(r)}`).toBeLessThanOrEqual(bound);
          if (format === 'q8_0') expect(r.top1Agreement, JSON.stringify(r)).toBeGreaterThanOrEqual(0.9);
        } finally {
          q.dispose();
        }
      }
    } finally {
      fp32.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a shape of whole super-blocks (rows of 256 and 768): q4_k logits within 25 % of float32 (relative L2, median step; q4_0 measured beside it)', async () => {
    const c: LlamaConfig = { architecture: 'llama', vocabSize: 4096, hiddenSize: 256, intermediateSize: 768, numLayers: 4, numHeads: 4, numKvHeads: 4, maxPositions: 256, specialTokens: { bos: 1, eos: [2] } };
    const before = tf.memory().numTensors;
    const fp32 = LlamaModel.fromParameters(c, randomLlamaParameters(c, 16, { tied: false }));
    const errors: Record<string, number> = {};
    try {
      for (const format of ['q4_k', 'q4_0'] as const) {
        const q = LlamaModel.fromParameters(c, randomLlamaParameters(c, 16, { tied: false }), { weights: format });
        try {
          errors[format] = (await logitsAgreement(fp32, q, [1, 300, 2000, 45, 17], 32)).medianRelativeError;
        } finally {
          q.dispose();
        }
      }
    } finally {
      fp32.dispose();
    }
    expect(errors.q4_k, JSON.stringify(errors)).toBeLessThanOrEqual(0.25);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('weights a format cannot hold (an fp16 value or a q8_0/q4_0 block scale beyond ±65504) are a typed error at load, naming the weight; nothing is left', () => {
    const c: LlamaConfig = { architecture: 'llama', vocabSize: 64, hiddenSize: 32, intermediateSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 4, maxPositions: 16, specialTokens: { bos: 1, eos: [2] } };
    const before = tf.memory().numTensors;
    for (const [format, value] of [['fp16', 7e4], ['q8_0', 127 * 7e4], ['q4_0', 8 * 7e4]] as const) {
      const params = randomLlamaParameters(c, 3, { tied: false });
      params.get('layers.1.up').data[37] = value; // the last layer's: earlier weights are already on the backend
      let err: unknown;
      try {
        LlamaModel.fromParameters(c, params, { weights: format }).dispose();
      } catch (e) {
        err = e;
      }
      expect(InvalidOptionError.isInstance(err), `${format}: ${String(err)}`).toBe(true);
      expect(String(err), format).toContain('layers.1.gate');
      expect(tf.memory().numTensors, format).toBe(before);
      // just inside the range loads
      params.get('layers.1.up').data[37] = value / 2;
      LlamaModel.fromParameters(c, params, { weights: format }).dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it.skipIf(!existsSync(stories))('stories260K: greedy continuations with q8_0 weights follow float32 for ≥ 100 of 200 tokens on average over 8 prompts', async () => {
    const fp32 = await loadModel(stories);
    const q8 = await loadModel(stories, { weights: 'q8_0' });
    try {
      const tok = fp32.tokenizer!;
      const prompts = STORY_PROMPTS.map((t) => tok.encode(t));
      const shared = await greedyCommonPrefix(fp32.model as DecoderOnlyModel, q8.model as DecoderOnlyModel, prompts, 200);
      const mean = shared.reduce((a, b) => a + b, 0) / shared.length;
      expect(mean, `tokens shared before the first difference: ${shared.join(', ')}`).toBeGreaterThanOrEqual(100);
    } finally {
      fp32.dispose();
      q8.dispose();
    }
  });
});
