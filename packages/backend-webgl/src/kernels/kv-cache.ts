import * as tf from '@tensorflow/tfjs-core';
import { MASKED, cloneStore, gatherStoreRows, groupedAttention, mapStores, readStores, storeBytes, type TensorStore } from '@kvt/models';
import { KVCacheContainer, type KVCacheOptions, type KVStorage, type WriteContext } from '@kvt/kernels';

/** Buckets are powers of two: the storage never holds more than 2× the valid length. */
const MIN_BUCKET = 1;

const bucketFor = (n: number, max: number) => {
  let b = MIN_BUCKET;
  while (b < n) b *= 2;
  return Math.min(b, Math.max(max, n));
};

/** The bucket storage: per layer K and V `[rows, kvHeads, bucket, headDim]`, a power of two. */
export class BucketStorage implements KVStorage {
  private keys: TensorStore;
  private values: TensorStore;
  private bucket = 0;
  /** The bucket grew for this forward pass (its shapes are new: no one-hot write). */
  private grew = false;
  /** K/V bytes written (see `Cache.bytesWritten`): a decode step's one-hot mix writes the whole bucket three times. */
  bytesWritten = 0;
  /** Per forward pass: the one-hot row and the mask, shared by every layer. */
  private stepInputs: { onehot: tf.Tensor4D | null; mask: tf.Tensor4D } | null = null;

  constructor(
    private readonly options: KVCacheOptions,
    /** Positions the caller expects (generation passes prompt + maxNewTokens): the first bucket holds them all. */
    private readonly hint = Math.min(options.capacityHint ?? 0, options.maxLength),
  ) {
    this.keys = new Array(options.numLayers).fill(null);
    this.values = new Array(options.numLayers).fill(null);
  }

  get capacity(): number {
    return this.bucket;
  }

  reserve(needed: number): void {
    // the first bucket covers the expected length, so a whole generation runs in one bucket
    const next = bucketFor(this.bucket === 0 ? Math.max(needed, this.hint) : needed, this.options.maxLength);
    // grow: pad every layer into the next bucket (the one time shapes change)
    mapStores([this.keys, this.values], (t) => tf.pad(t, [[0, 0], [0, 0], [0, next - this.bucket], [0, 0]]));
    this.bytesWritten += storeBytes(this.keys, this.values);
    this.bucket = next;
    this.grew = true;
  }

  /** Mask [rows, 1, n, bucket]: query i (at start + i) sees keys padding[r] ≤ j ≤ start + i. */
  private maskFor(at: WriteContext, n: number): tf.Tensor4D {
    const B = this.bucket;
    const data = new Float32Array(at.rows * n * B);
    at.padding.forEach((pad, b) => {
      for (let i = 0; i < n; i++) for (let j = 0; j < B; j++) if (j < pad || j > at.start + i) data[(b * n + i) * B + j] = MASKED;
    });
    return tf.keep(tf.tensor4d(data, [at.rows, 1, n, B]));
  }

  attend(layer: number, q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, at: WriteContext): tf.Tensor4D {
    const n = k.shape[2];
    const { start } = at;
    if (layer === 0) this.beginStep(at, n);
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
      if (this.bucket > used) parts.push(tf.zeros([at.rows, this.options.numKvHeads, this.bucket - used, this.options.headDim]));
      return tf.concat(parts, 2);
    };
    const oneHot = !!step.onehot && !!this.keys[layer];
    const K = tf.keep(write(this.keys[layer]!, k));
    const V = tf.keep(write(this.values[layer]!, v));
    // the mix writes K·(1 − e), k·e and their sum, each the whole bucket; a prefill writes the bucket once
    this.bytesWritten += (oneHot ? 3 : 1) * 4 * (K.size + V.size);
    this.keys[layer]?.dispose();
    this.values[layer]?.dispose();
    this.keys[layer] = K;
    this.values[layer] = V;
    const out = groupedAttention(q, K, V, step.mask);
    if (layer === this.options.numLayers - 1) this.advanced();
    return out;
  }

  private beginStep(at: WriteContext, n: number): void {
    this.advanced();
    let onehot: tf.Tensor4D | null = null;
    if (n === 1 && at.start > 0 && !this.grew) {
      const data = new Float32Array(this.bucket);
      data[at.start] = 1;
      onehot = tf.keep(tf.tensor4d(data, [1, 1, this.bucket, 1]));
    }
    this.grew = false;
    this.stepInputs = { onehot, mask: this.maskFor(at, n) };
  }

  advanced(): void {
    if (!this.stepInputs) return;
    this.stepInputs.onehot?.dispose();
    this.stepInputs.mask.dispose();
    this.stepInputs = null;
  }

  reorder(indices: readonly number[]): void {
    gatherStoreRows([this.keys, this.values], indices);
    this.bytesWritten += storeBytes(this.keys, this.values);
  }

  // truncate: positions ≥ length are masked and overwritten when written again (nothing to do)

  read(layer: number, length: number): Promise<{ k: Float32Array; v: Float32Array }> {
    return readStores(this.keys, this.values, layer, length);
  }

  fork(): BucketStorage {
    const copy = new BucketStorage(this.options, this.hint);
    copy.keys = cloneStore(this.keys);
    copy.values = cloneStore(this.values);
    copy.bucket = this.bucket;
    return copy;
  }

  dispose(): void {
    this.advanced();
    for (const t of [...this.keys, ...this.values]) t?.dispose();
    this.keys.fill(null);
    this.values.fill(null);
  }
}

/**
 * The KV cache of the GPU backends (`@kvt/backend-webgl`, `@kvt/backend-webgpu`): {@link BucketStorage} in the shared
 * container. Storage tensors
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
export class BucketKVCache extends KVCacheContainer<BucketStorage> {
  constructor(options: KVCacheOptions) {
    super(options, new BucketStorage(options));
  }
}
