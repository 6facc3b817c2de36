/**
 * The kernel-level conformance suite: one call per backend checks its KV cache and its kvt kernels against the
 * reference (the concat cache, plain tfjs ops) on seeded random q/k/v: appends over a prefill and single steps,
 * growth, left padding, reorders (permutation, duplication, identity), truncate, fork, bytes and tensor leaks.
 * Each backend declares its float tolerance (relative to the largest reference value).
 *
 * @example
 * ```ts
 * // packages/backend-wasm/src/kernels/kernels.test.ts
 * describeKernelConformance({ backend: 'wasm', setup: () => import('../index.js'), tolerance: 1e-5, kernels: ['KvtLinear'] });
 * ```
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { UnsupportedError, createRng } from '@kvt/core';
import {
  KVCacheContainer,
  QUANTIZED_FORMATS,
  createBackendKVCache,
  kvBytesPerPosition,
  registeredBackend,
  hasKernel,
  LINEAR_ROW_GROUP,
  blockValues,
  blockWeight,
  runGatherRows,
  runLinear,
  runRmsNorm,
  supportsWeightFormat,
  type KVCache,
  type KVCacheOptions,
  type KvtKernelName,
  type BlockFormat,
  type QuantizedFormat,
} from '@kvt/kernels';
import { dequantizeRows, quantizeRows } from '../weights/quantize.js';
import { ConcatKVCache } from '../kv-cache/concat-cache.js';

export interface KernelConformanceOptions {
  /** tfjs backend name. */
  readonly backend: string;
  /** Registers the backend package (its kernels and cache). */
  readonly setup: () => Promise<unknown>;
  /** Largest allowed |backend − reference| ÷ max |reference| (float rounding of the backend's kernels). */
  readonly tolerance: number;
  /** The kvt kernels the backend registers (checked to be there, and each against the reference). */
  readonly kernels: readonly KvtKernelName[];
  /** The quantized weight formats the backend multiplies as stored (checked to be declared, and each against the reference). */
  readonly weightFormats?: readonly QuantizedFormat[];
}

type Rng = ReturnType<typeof createRng>;
const random = (shape: number[], rng: Rng) =>
  tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.next() * 2 - 1), shape);

/** max |a − b| ÷ max |b|, skipping entries `skip(j)` says are undefined (attention of a padding position). */
function relativeDiff(a: Float32Array, b: Float32Array, skip: (j: number) => boolean = () => false): number {
  let diff = 0;
  let scale = 1e-30;
  b.forEach((v, j) => {
    if (skip(j)) return;
    scale = Math.max(scale, Math.abs(v));
    diff = Math.max(diff, Math.abs(a[j]! - v));
  });
  return diff / scale;
}

export function describeKernelConformance(o: KernelConformanceOptions): void {
  describe(`kernel conformance: ${o.backend}`, () => {
    beforeAll(async () => {
      await o.setup();
      await tf.setBackend(o.backend);
    });

    it(`registers the kernels it declares (${o.kernels.join(', ') || 'none'})`, () => {
      for (const name of o.kernels) expect(hasKernel(name, o.backend), name).toBe(true);
    });

    const shape = { numLayers: 2, numKvHeads: 2, headDim: 8, maxLength: 96 };
    const heads = 4; // grouped: two query heads per K/V head

    /** Drives both caches through the same appends; expects equal attention after each, by `tolerance`. */
    // reads back asynchronously: WebGPU has no synchronous read (tfjs emulates one through a canvas per read)
    async function lockstep(cache: KVCache, reference: KVCache, rng: Rng, steps: readonly number[], label: string): Promise<void> {
      const b = cache.batchSize;
      for (const n of steps) {
        for (let layer = 0; layer < shape.numLayers; layer++) {
          const q = random([b, heads, n, shape.headDim], rng);
          const k = random([b, shape.numKvHeads, n, shape.headDim], rng);
          const v = random([b, shape.numKvHeads, n, shape.headDim], rng);
          const got = tf.tidy(() => cache.attend(layer, q as tf.Tensor4D, k as tf.Tensor4D, v as tf.Tensor4D));
          const want = tf.tidy(() => reference.attend(layer, q as tf.Tensor4D, k as tf.Tensor4D, v as tf.Tensor4D));
          // a position inside a row's left padding attends to nothing: undefined, not compared
          const start = cache.length;
          const skip = (j: number) => {
            const row = Math.floor(j / (heads * n * shape.headDim));
            const t = Math.floor(j / shape.headDim) % n;
            return start + t < cache.padding[row]!;
          };
          const d = relativeDiff((await got.data()) as Float32Array, (await want.data()) as Float32Array, skip);
          expect(d, `${label}: layer ${layer} at length ${cache.length}`).toBeLessThanOrEqual(o.tolerance);
          tf.dispose([q, k, v, got, want]);
        }
        cache.advance(n);
        reference.advance(n);
      }
    }

    function pair(options: Partial<KVCacheOptions> & { batchSize: number }): [KVCache, KVCache] {
      const all = { ...shape, ...options };
      return [createBackendKVCache(all), new ConcatKVCache(all)];
    }

    it('appends and attends like the reference: prefill, single steps, growth, left padding; no leak', async () => {
      const before = tf.memory().numTensors;
      const rng = createRng(11);
      const [cache, reference] = pair({ batchSize: 3, capacityHint: 16 });
      cache.setPadding([0, 3, 1]);
      reference.setPadding([0, 3, 1]);
      await lockstep(cache, reference, rng, [7, ...Array<number>(30).fill(1), 4], 'append');
      expect(cache.length).toBe(41);
      expect(cache.capacity).toBeGreaterThanOrEqual(41);
      expect(cache.bytes).toBe(2 * shape.numLayers * 3 * shape.numKvHeads * shape.headDim * cache.capacity * 4);
      cache.dispose();
      reference.dispose();
      expect(cache.disposed).toBe(true);
      expect(tf.memory().numTensors).toBe(before);
    });

    it('K/V stored as fp16 or int8 (where the backend offers them) attend like the reference storing the same; fewer bytes; save/read back', async () => {
      const dtypes = (registeredBackend(o.backend)?.kvDtypes ?? ['fp32']).filter((d) => d !== 'fp32');
      for (const dtype of ['fp16', 'int8'] as const)
        if (!dtypes.includes(dtype)) expect(() => createBackendKVCache({ ...shape, batchSize: 1, kvDtype: dtype }), dtype).toThrow(UnsupportedError);
      for (const kvDtype of dtypes) {
        const before = tf.memory().numTensors;
        const rng = createRng(16);
        const [cache, reference] = pair({ batchSize: 3, capacityHint: 16, kvDtype });
        cache.setPadding([0, 2, 1]);
        reference.setPadding([0, 2, 1]);
        await lockstep(cache, reference, rng, [6, ...Array<number>(20).fill(1)], `${kvDtype} append (growth)`);
        for (const indices of [[2, 0, 1], [1, 1, 0]]) {
          cache.reorder(indices);
          reference.reorder(indices);
          await lockstep(cache, reference, rng, [1, 1], `${kvDtype} after reorder [${indices.join(', ')}]`);
        }
        const copy = cache.fork();
        const copyReference = reference.fork();
        await lockstep(copy, copyReference, rng, [1, 1], `${kvDtype} fork`);
        // rewound into a full block (int8: one already sealed), then a write across several blocks
        copy.truncate(13);
        copyReference.truncate(13);
        await lockstep(copy, copyReference, rng, [2, 37, 1], `${kvDtype} truncated to 13`);
        // what is stored is what the reference stores (the same rounding), within float rounding
        const c = cache as KVCacheContainer;
        const r = reference as KVCacheContainer;
        const [got, want] = [await c.read(1), await r.read(1)];
        expect(relativeDiff(got.k, want.k), `${kvDtype} stored K`).toBeLessThanOrEqual(1e-6);
        expect(relativeDiff(got.v, want.v), `${kvDtype} stored V`).toBeLessThanOrEqual(1e-6);
        // rows × capacity, or less where a paged storage shares blocks between rows (the reorders above duplicated
        // one); int8 keeps the block being filled as fp16, so fp16's bytes bound it (its ratio: kv-dtype-quality.test.ts)
        const unshared = 2 * shape.numLayers * 3 * shape.numKvHeads * cache.capacity * kvBytesPerPosition(kvDtype === 'int8' ? 'fp16' : kvDtype, shape.headDim);
        if ((cache as KVCacheContainer).blocks) expect(cache.bytes).toBeLessThan(unshared);
        else expect(cache.bytes).toBe(unshared);
        for (const x of [cache, reference, copy, copyReference]) x.dispose();
        expect(tf.memory().numTensors).toBe(before);
      }
    });

    it('reorder (permutation, duplication, identity, fewer rows), truncate and fork equal the reference', async () => {
      const before = tf.memory().numTensors;
      const rng = createRng(12);
      const [cache, reference] = pair({ batchSize: 4, capacityHint: 16 });
      await lockstep(cache, reference, rng, [5, 1, 1], 'prefill');
      for (const indices of [[3, 2, 1, 0], [0, 0, 2, 2], [0, 1, 2, 3], [1, 1, 1, 0]]) {
        cache.reorder(indices);
        reference.reorder(indices);
        await lockstep(cache, reference, rng, [1, 1], `after reorder [${indices.join(', ')}]`);
      }
      cache.reorder([2, 0]);
      reference.reorder([2, 0]);
      expect(cache.batchSize).toBe(2);
      await lockstep(cache, reference, rng, [1], 'after reorder to 2 rows');
      cache.truncate(6);
      reference.truncate(6);
      await lockstep(cache, reference, rng, [2, 1], 'after truncate');
      const copy = cache.fork();
      const copyReference = reference.fork();
      await lockstep(copy, copyReference, rng, Array<number>(20).fill(1), 'fork (grows past the original)');
      await lockstep(cache, reference, rng, [1], 'original after the fork advanced');
      for (const c of [cache, reference, copy, copyReference]) c.dispose();
      expect(tf.memory().numTensors).toBe(before);
    });

    it.skipIf(!o.kernels.includes('KvtLinear'))('KvtLinear equals tf.matMul over odd sizes and every tail', () => {
      const rng = createRng(13);
      for (const [m, inDim, out] of [[1, 8, 8], [1, 13, 7], [3, 17, 9], [4, 24, 16], [5, 9, 33], [9, 70, 21], [1, 288, 30]]) {
        const x = random([m!, inDim!], rng) as tf.Tensor2D;
        const w = random([inDim!, out!], rng) as tf.Tensor2D;
        const got = runLinear(x, w)!;
        const want = tf.matMul(x, w);
        expect(got.shape).toEqual([m, out]);
        expect(relativeDiff(got.dataSync() as Float32Array, want.dataSync() as Float32Array), `[${m}, ${inDim}]·[${inDim}, ${out}]`).toBeLessThanOrEqual(o.tolerance);
        tf.dispose([x, w, got, want]);
      }
    });

    it('declares the quantized weight formats it multiplies', () => {
      for (const format of QUANTIZED_FORMATS) expect(supportsWeightFormat(format, o.backend), format).toBe((o.weightFormats ?? []).includes(format));
    });

    // float32 rows (what a backend whose float32Layout is 'rows' multiplies) on every backend with KvtLinear
    const rowFormats: BlockFormat[] = [...(o.weightFormats ?? []), ...(o.kernels.includes('KvtLinear') ? (['fp32'] as const) : [])];
    for (const format of rowFormats) {
      it(`${format} rows: KvtLinear equals dequantize-then-multiply over odd sizes and every block edge; KvtGatherRows the dequantized rows`, () => {
        const rng = createRng(15);
        // rows m: a tile of four and tails; in: one block, several, an odd count (q4_k: as many super-blocks of 256);
        // out: odd counts
        const perBlock = blockValues(format) === 256 ? 8 : 1;
        for (const [m, inDim, out] of [[1, 32, 1], [1, 64, 7], [1, 64, 8], [3, 96, 5], [4, 32, 33], [5, 288, 30], [9, 160, 21], [1, 256, 101], [2, 128, 12]].map(([a, b, c]) => [a!, b! * perBlock, c!])) {
          const rows = Float32Array.from({ length: out! * inDim! }, () => (rng.next() * 2 - 1) * (rng.next() < 0.02 ? 8 : 1));
          const bytes = format === 'fp32' ? new Uint8Array(rows.buffer) : quantizeRows(rows, out!, inDim!, format);
          // a table (rows one after another) and a linear weight (rows in interleaved groups of four)
          const table = blockWeight(bytes, format, inDim!, out!, 1);
          const linear = blockWeight(bytes, format, inDim!, out!, LINEAR_ROW_GROUP);
          const xs = Float32Array.from({ length: m! * inDim! }, () => rng.next() * 2 - 1);
          const x = tf.tensor2d(xs, [m!, inDim!]);
          // the reference: the dequantized rows, multiplied in float64
          const deq = format === 'fp32' ? rows : dequantizeRows(bytes, out!, inDim!, format);
          const want = new Float32Array(m! * out!);
          for (let t = 0; t < m!; t++)
            for (let r = 0; r < out!; r++) {
              let sum = 0;
              for (let i = 0; i < inDim!; i++) sum += xs[t * inDim! + i]! * deq[r * inDim! + i]!;
              want[t * out! + r] = sum;
            }
          for (const w of [table, linear]) {
            const got = runLinear(x, w)!;
            expect(got.shape).toEqual([m, out]);
            // float rounding of the backend, and the backend's own rounding of the input (int16 per block of 32 on wasm)
            const what = `${format} [${m}, ${inDim}]·[${inDim}, ${out}], row group ${w.rowGroup}`;
            expect(relativeDiff(got.dataSync() as Float32Array, want), what).toBeLessThanOrEqual(Math.max(o.tolerance, 1e-4));
            got.dispose();
          }
          const ids = tf.tensor1d([out! - 1, 0, Math.floor(out! / 2)], 'int32');
          for (const w of [table, linear]) {
            const gathered = runGatherRows(w, ids);
            [out! - 1, 0, Math.floor(out! / 2)].forEach((r, k) =>
              expect(Array.from(gathered.dataSync().subarray(k * inDim!, (k + 1) * inDim!)), `row ${r}, row group ${w.rowGroup}`).toEqual(Array.from(deq.subarray(r * inDim!, (r + 1) * inDim!))),
            );
            gathered.dispose();
          }
          tf.dispose([table.w, linear.w, x, ids]);
        }
      });
    }

    it.skipIf(!o.kernels.includes('KvtRmsNorm'))('KvtRmsNorm equals RMSNorm from tfjs ops', () => {
      const rng = createRng(14);
      for (const [m, d] of [[1, 8], [3, 13], [2, 288]]) {
        const x = random([m!, d!], rng) as tf.Tensor2D;
        const weight = random([d!], rng) as tf.Tensor1D;
        const got = runRmsNorm(x, weight, 1e-5)!;
        const want = tf.tidy(() => tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), 1e-5))), weight));
        expect(relativeDiff(got.dataSync() as Float32Array, want.dataSync() as Float32Array), `[${m}, ${d}]`).toBeLessThanOrEqual(o.tolerance);
        tf.dispose([x, weight, got, want]);
      }
    });
  });
}
