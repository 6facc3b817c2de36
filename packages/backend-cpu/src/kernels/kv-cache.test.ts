import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { createRng } from '@kvt/core';
import { ConcatKVCache } from '@kvt/models';
import { HostKVCache } from './kv-cache.js';
import type { KVCache } from '@kvt/kernels';

const random = (shape: [number, number, number, number], rng: ReturnType<typeof createRng>) =>
  tf.tensor4d(Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => rng.next() * 2 - 1), shape);

/** Attention outputs of `cache` for a prefill of 5 then 20 single steps, 2 layers, GQA (4 heads over 2). */
function run(cache: KVCache, headDim: number): Float32Array[] {
  const rng = createRng(7);
  const outs: Float32Array[] = [];
  for (const n of [5, ...Array<number>(20).fill(1)]) {
    for (let layer = 0; layer < 2; layer++) {
      const [q, k, v] = [random([2, 4, n, headDim], rng), random([2, 2, n, headDim], rng), random([2, 2, n, headDim], rng)];
      const out = tf.tidy(() => cache.attend(layer, q, k, v)); // models call attend inside tidy
      outs.push(out.dataSync() as Float32Array);
      tf.dispose([q, k, v, out]);
    }
    cache.advance(n);
  }
  return outs;
}

describe('HostKVCache kernels', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  // float32 at head sizes 8 and 6 (not a multiple of 4); fp16 and int8 (blocks sealed past 16 positions) at 8
  for (const [headDim, kvDtype] of [[8, 'fp32'], [6, 'fp32'], [8, 'fp16'], [8, 'int8']] as const) {
    it(`attention equals the concat reference storing the same (headDim ${headDim}, ${kvDtype}), left padding included`, () => {
      const before = tf.memory().numTensors;
      const options = { numLayers: 2, batchSize: 2, numKvHeads: 2, headDim, maxLength: 64, capacityHint: 16, kvDtype };
      const host = new HostKVCache(options);
      const reference = new ConcatKVCache(options);
      host.setPadding([0, 2]);
      reference.setPadding([0, 2]);
      const a = run(host, headDim);
      const b = run(reference, headDim);
      expect(host.capacity).toBe(32); // two blocks of 16 (25 positions)
      host.dispose();
      reference.dispose();
      a.forEach((x, i) => {
        // the prefill's outputs at row 1's two padding positions attend to nothing: not compared
        const n = i < 2 ? 5 : 1;
        const padded = (j: number) => i < 2 && Math.floor(j / (4 * n * headDim)) === 1 && Math.floor(j / headDim) % n < 2;
        let diff = 0;
        x.forEach((value, j) => {
          if (!padded(j)) diff = Math.max(diff, Math.abs(value - b[i]![j]!));
        });
        expect(diff, `call ${i}`).toBeLessThan(1e-5);
      });
      expect(tf.memory().numTensors).toBe(before);
    });
  }

  it('a reorder copies no K/V (block tables; a later write copies the one shared block it writes into), and attends like the reference', () => {
    const before = tf.memory().numTensors;
    const options = { numLayers: 2, batchSize: 3, numKvHeads: 2, headDim: 8, maxLength: 64, capacityHint: 32 };
    const host = new HostKVCache(options);
    const reference = new ConcatKVCache(options);
    const rng = createRng(9);
    const step = (n: number) => {
      const outs: Float32Array[][] = [[], []];
      for (let layer = 0; layer < 2; layer++) {
        const [q, k, v] = [random([3, 4, n, 8], rng), random([3, 2, n, 8], rng), random([3, 2, n, 8], rng)];
        [host, reference].forEach((c, i) => {
          const out = tf.tidy(() => c.attend(layer, q, k, v));
          outs[i]!.push(out.dataSync() as Float32Array);
          out.dispose();
        });
        tf.dispose([q, k, v]);
      }
      host.advance(n);
      reference.advance(n);
      outs[0]!.forEach((x, i) => x.forEach((value, j) => expect(Math.abs(value - outs[1]![i]![j]!)).toBeLessThan(1e-5)));
    };
    step(6);
    step(1);
    const stepBytes = 2 * options.numLayers * 3 * options.numKvHeads * options.headDim * 4; // one position of K and V, every row
    const blockBytes = 2 * options.numLayers * options.numKvHeads * 16 * options.headDim * 4;
    for (const [indices, copied] of [[[0, 1, 2], 0], [[0, 2, 2], 1], [[1, 0, 2], 0]] as const) {
      const written = host.bytesWritten!;
      host.reorder(indices);
      reference.reorder(indices);
      expect(host.bytesWritten! - written, `[${indices.join(', ')}]`).toBe(0);
      step(1);
      expect(host.bytesWritten! - written, `the step after [${indices.join(', ')}]`).toBe(stepBytes + copied * blockBytes);
    }
    host.dispose();
    reference.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});