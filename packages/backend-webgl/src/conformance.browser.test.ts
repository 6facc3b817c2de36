import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { generate } from '@kvt/core';
import { describeRealFixtures } from '@kvt/loaders/testing';
import { describeCacheConformance, describeKernelConformance, tinyDecoderOnlyModels } from '@kvt/models/testing';
import { compiledShaderPrograms } from './index.js';

declare const __KVT_FIXTURES__: string;
const fixture = (p: string) => `${location.origin}/@fs${__KVT_FIXTURES__}/${p}`;
const readText = async (p: string) => (await fetch(fixture(p))).text();

// The same suites as in Node, over the WebGL bucket cache, in headless Chromium.
describeCacheConformance({ backend: 'webgl', cache: 'backend', setup: () => import('./index.js'), steps: 24 });
describeKernelConformance({ backend: 'webgl', setup: () => import('./index.js'), tolerance: 2e-4, kernels: [] });
describeRealFixtures({ backend: 'webgl', cache: 'backend', setup: () => import('./index.js'), fixture, readText, tolerance: 2e-4 });

describe('WebGL shader programs', () => {
  it('compiles no new shader program after the second decode step', async () => {
    await import('./index.js');
    await tf.setBackend('webgl');
    const model = tinyDecoderOnlyModels[0]!.build();
    try {
      const counts: number[] = [];
      await generate(model, { inputIds: [1, 5, 9], maxNewTokens: 40, stopTokenIds: [], onToken: () => counts.push(compiledShaderPrograms()!) });
      // counts[k] is read after token k: token 0 comes from the prefill, token 1 from decode step 1, …
      expect(counts[2]).toBeGreaterThan(0);
      expect(counts[counts.length - 1]).toBe(counts[2]);
    } finally {
      model.dispose();
    }
  });
});

describe('WebGL K/V writes', () => {
  it('a decode step writes its texel row in place: the same bytes at buckets 16 and 128, logits equal to an uncached forward', async () => {
    await import('./index.js');
    await tf.setBackend('webgl');
    const before = tf.memory().numTensors;
    const model = tinyDecoderOnlyModels[0]!.build();
    const { numLayers, numKvHeads, headDim } = model.config;
    try {
      const perStep: number[] = [];
      for (const capacityHint of [16, 128]) {
        const cache = model.createCache({ batchSize: 2, kind: 'backend', capacityHint });
        const seqs = [[1, 5, 9], [1, 7, 3]];
        await model.forward(seqs, cache);
        for (let step = 0; step < 4; step++) {
          const written = cache.bytesWritten!;
          const next = [[4 + step], [8 + step]];
          const got = await model.forward(next, cache);
          perStep.push(cache.bytesWritten! - written);
          next.forEach((t, r) => seqs[r]!.push(t[0]!));
          const full = await model.forward(seqs, null, { logits: 'all' });
          for (let r = 0; r < 2; r++) {
            const want = full.data.subarray(((r + 1) * full.positions - 1) * full.vocabSize, (r + 1) * full.positions * full.vocabSize);
            const row = got.data.subarray(r * got.vocabSize, (r + 1) * got.vocabSize);
            row.forEach((v, i) => expect(Math.abs(v - want[i]!), `bucket ≥ ${capacityHint} step ${step} row ${r}`).toBeLessThan(2e-4));
          }
        }
        expect(cache.capacity).toBeGreaterThanOrEqual(capacityHint);
        cache.dispose();
      }
      // per layer, K and V: the texel row (2 positions) of 2 rows × kvHeads × headDim floats, rendered then copied
      const expected = numLayers * 2 * (2 * 2 * 2 * numKvHeads * headDim * 4);
      expect(perStep).toEqual(Array<number>(8).fill(expected));
    } finally {
      model.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
