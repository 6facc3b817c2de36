/**
 * The wasm cache's paged blocks: the shared suite (@kvt/models/testing: beams share the prompt's blocks, reorders
 * and forks copy tables, the prefix cache shares blocks), and blocks of 64 positions where a head row is 256 bytes.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { createRng, type DecoderOnlyModel } from '@kvt/core';
import { createBackendKVCache, type KVCacheContainer } from '@kvt/kernels';
import { loadModel } from '@kvt/loaders';
import { ConcatKVCache } from '@kvt/models';
import { describePagedBlocks } from '@kvt/models/testing';
import { activate } from './index.js';
import { kvBlockSize } from './kernels/kv-cache.js';

const fixtures = process.env.KVT_FIXTURES ?? resolve(dirname(fileURLToPath(import.meta.url)), '../../../../shared/fixtures');
const stories = join(fixtures, 'stories260K', 'stories260K.bin');

describePagedBlocks({
  backend: 'wasm',
  activate,
  available: existsSync(stories),
  load: async () => {
    const loaded = await loadModel(stories);
    return { model: loaded.model as DecoderOnlyModel, encode: (t) => loaded.tokenizer!.encode(t), dispose: () => loaded.dispose() };
  },
});

describe('wasm blocks of 64 positions', () => {
  beforeAll(async () => {
    await activate();
  });

  it('blocks of 64 positions (heads of 64 floats: the 110M shape) attend like the reference cache across block edges, in every K/V type', () => {
    const shape = { numLayers: 2, numKvHeads: 2, headDim: 64, maxLength: 256, batchSize: 2 };
    const rng = createRng(5);
    for (const kvDtype of ['fp32', 'fp16', 'int8'] as const) {
      const options = { ...shape, kvDtype };
      expect(kvBlockSize(options)).toBe(kvDtype === 'fp32' ? 64 : 16); // 256 bytes a head row in float32 only
      const before = tf.memory().numTensors;
      const cache = createBackendKVCache(options);
      const reference = new ConcatKVCache(options);
      for (const n of [50, 1, 13, 1, 1, 70]) {
        for (let layer = 0; layer < shape.numLayers; layer++) {
          const t = (heads: number) => tf.tensor4d(Float32Array.from({ length: 2 * heads * n * 64 }, () => rng.next() - 0.5), [2, heads, n, 64]);
          const [q, k, v] = [t(4), t(2), t(2)];
          const got = tf.tidy(() => cache.attend(layer, q, k, v));
          const want = tf.tidy(() => reference.attend(layer, q, k, v));
          const [g, w] = [got.dataSync(), want.dataSync()];
          let diff = 0;
          w.forEach((x, i) => (diff = Math.max(diff, Math.abs(x - g[i]!))));
          expect(diff, `${kvDtype}, layer ${layer} at length ${cache.length}`).toBeLessThan(1e-5);
          tf.dispose([q, k, v, got, want]);
        }
        cache.advance(n);
        reference.advance(n);
      }
      cache.reorder([1, 1]);
      expect((cache as KVCacheContainer).blocks!.shared).toBe(Math.ceil(cache.length / kvBlockSize(options)));
      cache.dispose();
      reference.dispose();
      expect(tf.memory().numTensors).toBe(before);
    }
  });
});
