import * as tf from '@tensorflow/tfjs-core';
import type { MathBackendWebGL } from '@tensorflow/tfjs-backend-webgl';
import { MASKED, bucketFor, cloneStore, disposeStores, gatherStoreRows, groupedAttention, mapStores, readStores, storeBytes, type TensorStore } from '@kvt/models';
import { KVCacheContainer, type KVCacheOptions, type KVStorage, type WriteContext } from '@kvt/kernels';
import { WriteRowProgram } from './write-row-program.js';
import { writeRowInPlace } from './write-rows-in-place.js';

/** The bucket storage: per layer K and V `[rows, kvHeads, bucket, headDim]`, a power of two. */
export class BucketStorage implements KVStorage {
  private keys: TensorStore;
  private values: TensorStore;
  private bucket = 0;
  /**
   * K/V bytes written (see `Cache.bytesWritten`): a decode step writes the texel row of its position in place (2
   * positions per row and head), or, where the texture cannot be written in place, the whole bucket once.
   */
  bytesWritten = 0;
  /** Per forward pass: the mask, shared by every layer. */
  private stepInputs: { mask: tf.Tensor4D } | null = null;

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
      if (n === 1 && old) {
        // decode step: one program per bucket shape (the position is a uniform), no new shader programs per step
        const out = (tf.backend() as unknown as MathBackendWebGL).runWebGLProgram(new WriteRowProgram(old.shape), [old, x], 'float32', [[0], [start]]);
        return tf.engine().makeTensorFromTensorInfo(out) as tf.Tensor4D;
      }
      // prefill or several tokens: build the bucket once (new shapes only here)
      const parts: tf.Tensor4D[] = [];
      if (old && start > 0) parts.push(tf.slice(old, [0, 0, 0, 0], [-1, -1, start, -1]));
      parts.push(x);
      const used = start + n;
      if (this.bucket > used) parts.push(tf.zeros([at.rows, this.options.numKvHeads, this.bucket - used, this.options.headDim]));
      return tf.concat(parts, 2);
    };
    for (const [store, x] of [[this.keys, k], [this.values, v]] as const) {
      const old = store[layer] ?? null;
      // a decode step: the new row into the cache's own texture (2 positions per row and head), where it can
      if (n === 1 && old && writeRowInPlace(old, x, start)) {
        this.bytesWritten += 4 * 2 * 2 * at.rows * this.options.numKvHeads * this.options.headDim; // the texel row, rendered then copied
        continue;
      }
      const next = tf.keep(write(old, x));
      this.bytesWritten += 4 * next.size; // the whole bucket, once
      old?.dispose();
      store[layer] = next;
    }
    const out = groupedAttention(q, this.keys[layer]!, this.values[layer]!, step.mask);
    if (layer === this.options.numLayers - 1) this.advanced();
    return out;
  }

  private beginStep(at: WriteContext, n: number): void {
    this.advanced();
    this.stepInputs = { mask: this.maskFor(at, n) };
  }

  advanced(): void {
    if (!this.stepInputs) return;
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
    disposeStores(this.keys, this.values);
  }
}

/**
 * The WebGL backend's KV cache: {@link BucketStorage} in the shared container. Storage tensors
 * `[batch, kvHeads, bucket, headDim]` whose shape stays fixed while the length grows inside a power-of-two bucket, so
 * decode steps reuse the same shader programs (tfjs's WebGL backend compiles one program per op and shape). A decode
 * step writes its row into the cache's texture in place ({@link writeRowInPlace}: the packed texel row holding the
 * position, rendered then copied; bytes written per step do not grow with the bucket), or, where the texture is
 * shared or not on the GPU, in one pass over the bucket into a new tensor ({@link WriteRowProgram}); the position is
 * a uniform in both. It attends over the whole bucket with an additive mask for the positions not yet written (and
 * left padding). A bucket holds at most 2× the valid length; crossing a power of two pads into the next bucket once.
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
