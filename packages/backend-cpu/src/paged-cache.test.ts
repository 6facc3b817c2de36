/**
 * The CPU cache's paged blocks on stories260K (the real fixture): beams share the prompt's blocks
 * (a 200-token prompt, 4 beams × 20 new tokens: cache bytes ≤ 1.3 × one beam's, the reference cache's tokens); a
 * reorder copies block tables, not K/V (its time at 64 and 1,000 positions printed). (K/V types:
 * kv-dtype-quality.test.ts.)
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { createRng, generate, type DecoderOnlyModel } from '@kvt/core';
import { loadModel, type LoadedModel } from '@kvt/loaders';
import { activate } from './index.js';
import { HostKVCache } from './kernels/kv-cache.js';

const fixtures = process.env.KVT_FIXTURES ?? resolve(dirname(fileURLToPath(import.meta.url)), '../../../../shared/fixtures');
const stories = join(fixtures, 'stories260K', 'stories260K.bin');
const TEXT =
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. ' +
  'She wanted to play with it, but it was too high. Lily\'s mom said, "Lily, let\'s go to the park." Lily was sad and didn\'t know what to do. ' +
  'She said, "I want to play with your ball, but I can\'t find it." Lily was sad and didn\'t know what to do. She said, "I\'m sorry, Lily. ' +
  'I didn\'t know what to do." Lily didn\'t want to help her mom, so she said, "I\'m sorry, mom. I didn\'t know what to do." Her mom said, ' +
  '"Don\'t worry, Lily. We can help you."';

describe('paged K/V blocks on cpu', () => {
  let loaded: LoadedModel | undefined;
  beforeAll(async () => {
    await activate();
    if (existsSync(stories)) loaded = await loadModel(stories);
    return () => loaded?.dispose();
  });

  it.skipIf(!existsSync(stories))('stories260K, 200-token prompt, 4 beams × 20 tokens: cache bytes ≤ 1.3 × one beam\'s; the reference cache\'s tokens', async () => {
    const model = loaded!.model as DecoderOnlyModel;
    const inputIds = loaded!.tokenizer!.encode(TEXT).slice(0, 200);
    const request = { inputIds, maxNewTokens: 20, stopTokenIds: [], numBeams: 4, numReturnSequences: 4 };
    const one = await generate(model, { ...request, numBeams: 1, numReturnSequences: 1 });
    const beams = await generate(model, request);
    const reference = await generate(model, { ...request, cache: 'concat' });
    expect(beams.sequences[0]!.hypotheses!.map((h) => h.tokens)).toEqual(reference.sequences[0]!.hypotheses!.map((h) => h.tokens));
    const ratio = beams.cache!.bytes / one.cache!.bytes;
    console.log(`cpu: 4 beams hold ${beams.cache!.bytes} bytes of K/V, one beam ${one.cache!.bytes}: ${ratio.toFixed(3)}×`);
    expect(ratio).toBeLessThanOrEqual(1.3);
  });

  it('a reorder copies no K/V at 64 and 1,000 positions (the 15M shape, 4 rows); times printed', () => {
    const shape = { numLayers: 6, numKvHeads: 6, headDim: 48, maxLength: 1024, batchSize: 4 };
    const rng = createRng(3);
    for (const length of [64, 1000]) {
      const cache = new HostKVCache(shape);
      const size = 4 * shape.numKvHeads * length * shape.headDim;
      for (let layer = 0; layer < shape.numLayers; layer++)
        tf.tidy(() => {
          const t = () => tf.tensor4d(Float32Array.from({ length: size }, () => rng.next() - 0.5), [4, shape.numKvHeads, length, shape.headDim]);
          cache.attend(layer, tf.zeros([4, shape.numKvHeads, length, shape.headDim]), t(), t());
        });
      cache.advance(length);
      const written = cache.bytesWritten!;
      const t0 = performance.now();
      cache.reorder([0, 0, 1, 1]);
      const ms = performance.now() - t0;
      console.log(`cpu: reorder [0, 0, 1, 1] at ${length} positions: ${ms.toFixed(3)} ms, ${cache.blocks!.inUse} blocks (${cache.blocks!.shared} shared)`);
      expect(cache.bytesWritten).toBe(written);
      expect(cache.blocks!.shared).toBe(cache.blocks!.inUse);
      cache.dispose();
    }
  });
});
