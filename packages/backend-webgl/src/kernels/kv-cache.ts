import * as tf from '@tensorflow/tfjs-core';
import { DisposedError } from '@kvt/core';
import { MASKED, cacheChecks, cloneStore, gatherStoreRows, groupedAttention, mapStores, type TensorStore } from '@kvt/models';
import type { KVCache, KVCacheOptions } from '@kvt/kernels';

/** Buckets are powers of two: the storage never holds more than 2× the valid length. */
const MIN_BUCKET = 1;

const bucketFor = (n: number, max: number) => {
  let b = MIN_BUCKET;
  while (b < n) b *= 2;
  return Math.min(b, Math.max(max, n));
};

/**
 * The KV cache of the GPU backends (`@kvt/backend-webgl`, `@kvt/backend-webgpu`): storage tensors
 * `[batch, kvHeads, bucket, headDim]` whose shape stays fixed while the length grows inside a power-of-two bucket, so
 * decode steps reuse the same shader programs (tfjs's WebGL and WebGPU backends compile one program per op and
 * shape). A decode step writes its row with a one-hot position mask, `K' = K·(1 − e_t) + k·e_t` (exact for finite
 * values), and attends over the whole bucket with an additive mask for the positions not yet written (and left
 * padding). A bucket holds at most 2× the valid length; crossing a power of two pads into the next bucket once.
 *
 * @example
 * ```ts
 * const cache = new BucketKVCache({ numLayers: 2, batchSize: 1, numKvHeads: 2, headDim: 8, maxLength: 64 });
 * cache.dispose();
 * ```
 */
export class BucketKVCache implements KVCache {
  readonly numLayers: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly maxLength: number;
  private keys: TensorStore; // per layer [batch, kvHeads, bucket, headDim]
  private values: TensorStore;
  private rows: number;
  private bucket = 0;
  private len = 0;
  private pads: number[];
  private isDisposed = false;
  /** Positions the caller expects (generation passes prompt + maxNewTokens): the first bucket holds them all. */
  private readonly hint: number;
  /** Per forward pass: the one-hot row and the mask, shared by every layer. */
  private stepInputs: { start: number; n: number; onehot: tf.Tensor4D | null; mask: tf.Tensor4D } | null = null;

  constructor(options: KVCacheOptions) {
    this.numLayers = options.numLayers;
    this.numKvHeads = options.numKvHeads;
    this.headDim = options.headDim;
    this.maxLength = options.maxLength;
    this.rows = options.batchSize;
    this.keys = new Array(this.numLayers).fill(null);
    this.values = new Array(this.numLayers).fill(null);
    this.pads = new Array<number>(this.rows).fill(0);
    this.hint = Math.min(options.capacityHint ?? 0, options.maxLength);
  }

  get batchSize() {
    return this.rows;
  }
  get length() {
    return this.len;
  }
  get capacity() {
    return this.bucket;
  }
  get bytes() {
    return this.bucket === 0 ? 0 : 2 * this.numLayers * this.rows * this.numKvHeads * this.bucket * this.headDim * 4;
  }
  get padding(): readonly number[] {
    return this.pads;
  }
  get disposed() {
    return this.isDisposed;
  }

  setPadding(padding: readonly number[]): void {
    this.check();
    this.pads = cacheChecks.padding(padding, this.rows, this.len);
  }

  /** Mask [batch, 1, n, bucket]: query i (at len + i) sees keys padding[b] ≤ j ≤ len + i. */
  private maskFor(start: number, n: number): tf.Tensor4D {
    const B = this.bucket;
    const data = new Float32Array(this.rows * n * B);
    this.pads.forEach((pad, b) => {
      for (let i = 0; i < n; i++) for (let j = 0; j < B; j++) if (j < pad || j > start + i) data[(b * n + i) * B + j] = MASKED;
    });
    return tf.keep(tf.tensor4d(data, [this.rows, 1, n, B]));
  }

  attend(layer: number, q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D): tf.Tensor4D {
    this.check();
    const n = k.shape[2];
    const start = this.len;
    cacheChecks.room(start, n, this.maxLength);
    if (layer === 0) this.beginStep(start, n);
    const step = this.stepInputs!;
    const write = (old: tf.Tensor4D | null, x: tf.Tensor4D): tf.Tensor4D => {
      if (step.onehot && old) {
        // decode step: fixed shapes, no new shader programs
        const oh = step.onehot; // [1, 1, bucket, 1]
        return tf.add(tf.mul(old, tf.sub(1, oh)), tf.mul(x, oh));
      }
      // prefill or several tokens: build the bucket once (new shapes only here)
      const parts: tf.Tensor4D[] = [];
      if (old && start > 0) parts.push(tf.slice(old, [0, 0, 0, 0], [-1, -1, start, -1]));
      parts.push(x);
      const used = start + n;
      if (this.bucket > used) parts.push(tf.zeros([this.rows, this.numKvHeads, this.bucket - used, this.headDim]));
      return tf.concat(parts, 2);
    };
    const K = tf.keep(write(this.keys[layer]!, k));
    const V = tf.keep(write(this.values[layer]!, v));
    this.keys[layer]?.dispose();
    this.values[layer]?.dispose();
    this.keys[layer] = K;
    this.values[layer] = V;
    const out = groupedAttention(q, K, V, step.mask);
    if (layer === this.numLayers - 1) this.endStep();
    return out;
  }

  private beginStep(start: number, n: number): void {
    this.endStep();
    const needed = start + n;
    let fresh = false;
    if (needed > this.bucket) {
      // the first bucket covers the expected length, so a whole generation runs in one bucket
      const next = bucketFor(this.bucket === 0 ? Math.max(needed, this.hint) : needed, this.maxLength);
      // grow: pad every layer into the next bucket (the one time shapes change)
      mapStores([this.keys, this.values], (t) => tf.pad(t, [[0, 0], [0, 0], [0, next - this.bucket], [0, 0]]));
      this.bucket = next;
      fresh = true;
    }
    let onehot: tf.Tensor4D | null = null;
    if (n === 1 && start > 0 && !fresh) {
      const data = new Float32Array(this.bucket);
      data[start] = 1;
      onehot = tf.keep(tf.tensor4d(data, [1, 1, this.bucket, 1]));
    }
    this.stepInputs = { start, n, onehot, mask: this.maskFor(start, n) };
  }

  private endStep(): void {
    if (!this.stepInputs) return;
    this.stepInputs.onehot?.dispose();
    this.stepInputs.mask.dispose();
    this.stepInputs = null;
  }

  advance(n: number): void {
    this.endStep();
    this.len += n;
  }

  reorder(indices: readonly number[]): void {
    this.check();
    cacheChecks.reorder(indices, this.rows);
    gatherStoreRows([this.keys, this.values], indices);
    this.pads = indices.map((i) => this.pads[i]!);
    this.rows = indices.length;
  }

  truncate(length: number): void {
    this.check();
    cacheChecks.truncate(length, this.len);
    // positions ≥ length are masked and overwritten when written again
    this.len = length;
  }

  fork(): BucketKVCache {
    this.check();
    const copy = new BucketKVCache({ numLayers: this.numLayers, batchSize: this.rows, numKvHeads: this.numKvHeads, headDim: this.headDim, maxLength: this.maxLength });
    copy.keys = cloneStore(this.keys);
    copy.values = cloneStore(this.values);
    copy.bucket = this.bucket;
    copy.len = this.len;
    copy.pads = [...this.pads];
    return copy;
  }

  dispose(): void {
    if (this.isDisposed) return;
    this.endStep();
    for (const t of [...this.keys, ...this.values]) t?.dispose();
    this.keys.fill(null);
    this.values.fill(null);
    this.isDisposed = true;
  }

  private check(): void {
    if (this.isDisposed) throw new DisposedError('KV cache');
  }
}
