import * as tf from '@tensorflow/tfjs-core';
import type { KVDtype } from '@kvt/core';
import { KVCacheContainer, type KVCacheOptions, type KVStorage, type WriteContext } from '@kvt/kernels';
import { causalPaddingMask } from './attention-mask.js';
import { cloneStore, disposeStores, gatherStoreRows, mapStores, readStores, storeBytes, type TensorStore } from './tensor-stores.js';
import { Int8KVRounding, int8KVRoundTrip, kvRoundTrip } from './kv-dtype.js';

/**
 * Grouped-query attention: q `[b, heads, n, hd]` over k, v `[b, kvHeads, T, hd]` with an additive mask
 * `[b, 1, n, T]`. Query heads are folded into the kv-head axis (`[b, kvHeads, groups·n, hd]`), so K/V are never
 * repeated. Returns `[b, heads, n, hd]`.
 */
export function groupedAttention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, mask: tf.Tensor4D): tf.Tensor4D {
  const [b, h, n, hd] = q.shape;
  const kvh = k.shape[1];
  const T = k.shape[2];
  const g = h / kvh;
  const qg = tf.reshape(q, [b, kvh, g * n, hd]);
  const scores = tf.reshape(tf.matMul(qg, k, false, true), [b, h, n, T]);
  const probs = tf.softmax(tf.add(scores, mask));
  return tf.reshape(tf.matMul(tf.reshape(probs, [b, kvh, g * n, T]), v), [b, h, n, hd]);
}

/**
 * The reference storage: per layer K and V `[rows, kvHeads, length, headDim]`, concatenated onto every step (values
 * rounded as a cache of `kvDtype` stores them).
 */
export class ConcatStorage implements KVStorage {
  private keys: TensorStore;
  private values: TensorStore;
  /** K/V bytes written (see `Cache.bytesWritten`): every position again on every append. */
  bytesWritten = 0;
  /** int8: what the backends' int8 caches store (key offsets, sealed blocks); the keys here are stored less μ. */
  private int8: Int8KVRounding | undefined;

  constructor(
    numLayers: number,
    /** K/V stored as this type: each row is rounded as such a cache rounds it ({@link kvRoundTrip}, {@link Int8KVRounding}). */
    private readonly kvDtype: KVDtype = 'fp32',
  ) {
    this.keys = new Array(numLayers).fill(null);
    this.values = new Array(numLayers).fill(null);
    if (kvDtype === 'int8') this.int8 = new Int8KVRounding(numLayers);
  }

  get capacity(): number {
    return this.keys[0]?.shape[2] ?? 0;
  }

  reserve(): void {} // concat grows on every write

  attend(layer: number, q: tf.Tensor4D, kIn: tf.Tensor4D, vIn: tf.Tensor4D, at: WriteContext): tf.Tensor4D {
    const fp16 = (t: tf.Tensor4D) => tf.tensor4d(kvRoundTrip(t.dataSync() as Float32Array, 'fp16'), t.shape);
    const [k, v] = this.int8 ? this.int8Rows(layer, kIn, vIn, at) : this.kvDtype === 'fp16' ? [fp16(kIn), fp16(vIn)] : [kIn, vIn];
    const n = k.shape[2];
    const oldK = this.keys[layer];
    const oldV = this.values[layer];
    const K = oldK ? tf.concat([oldK, k], 2) : tf.clone(k);
    const V = oldV ? tf.concat([oldV, v], 2) : tf.clone(v);
    this.bytesWritten += 4 * (K.size + V.size); // the concatenation writes every position again
    oldK?.dispose();
    oldV?.dispose();
    this.keys[layer] = tf.keep(K);
    this.values[layer] = tf.keep(V);
    const T = at.start + n;
    const mask = tf.tensor4d(causalPaddingMask(at.padding, at.start, n, T), [at.rows, 1, n, T]);
    const mu = this.int8?.keyOffsets(layer);
    return groupedAttention(q, mu ? tf.add(K, tf.tensor4d(mu, [1, K.shape[1], 1, K.shape[3]])) : K, V, mask);
  }

  /** int8: seals the stored positions this write passes, and gives the new rows as stored (keys less μ). */
  private int8Rows(layer: number, kIn: tf.Tensor4D, vIn: tf.Tensor4D, at: WriteContext): [tf.Tensor4D, tf.Tensor4D] {
    const rounding = this.int8!;
    const { sealFrom, sealTo, int8Below } = rounding.plan(layer, at.start, kIn.shape[2]);
    if (sealTo > sealFrom)
      for (const store of [this.keys, this.values]) {
        const old = store[layer]!;
        const [rows, kvh, T, hd] = old.shape;
        const data = old.dataSync() as Float32Array;
        const sealed = data.slice();
        for (let g = 0; g < rows * kvh; g++)
          for (let p = sealFrom; p < sealTo; p++) sealed.set(int8KVRoundTrip(data.subarray((g * T + p) * hd, (g * T + p + 1) * hd)), (g * T + p) * hd);
        store[layer] = tf.keep(tf.tensor4d(sealed, old.shape));
        old.dispose();
      }
    const encode = (t: tf.Tensor4D, isKey: boolean) =>
      tf.tensor4d(rounding.encode(layer, t.dataSync() as Float32Array, t.shape, at.start, int8Below, at.padding, isKey), t.shape);
    return [encode(kIn, true), encode(vIn, false)];
  }

  reorder(indices: readonly number[]): void {
    gatherStoreRows([this.keys, this.values], indices);
    this.bytesWritten += storeBytes(this.keys, this.values);
  }

  truncate(length: number): void {
    this.int8?.truncate(length);
    mapStores([this.keys, this.values], (t) => (length === 0 ? null : tf.slice(t, [0, 0, 0, 0], [-1, -1, length, -1])));
    this.bytesWritten += storeBytes(this.keys, this.values);
  }

  async read(layer: number, length: number): Promise<{ k: Float32Array; v: Float32Array }> {
    const read = await readStores(this.keys, this.values, layer, length);
    const mu = this.int8?.keyOffsets(layer);
    if (mu) {
      const [, kvh, , hd] = this.keys[layer]!.shape;
      // k [rows, kvh, length, hd]: head g's keys are stored less μ[g]
      for (let j = 0; j < read.k.length; j++) read.k[j] = Math.fround(read.k[j]! + mu[(Math.floor(j / (length * hd)) % kvh) * hd + (j % hd)]!);
    }
    return read;
  }

  fork(): ConcatStorage {
    const copy = new ConcatStorage(this.keys.length, this.kvDtype);
    copy.int8 = this.int8?.fork();
    copy.keys = cloneStore(this.keys);
    copy.values = cloneStore(this.values);
    return copy;
  }

  dispose(): void {
    disposeStores(this.keys, this.values);
  }
}

/**
 * The reference KV cache: each step concatenates the new K/V onto the old (copying the whole cache: O(length) per
 * token). Simple and exact on every backend; the backend packages replace it with caches that write in place.
 *
 * @example
 * ```ts
 * const cache = new ConcatKVCache({ numLayers: 2, batchSize: 1, numKvHeads: 4, headDim: 16, maxLength: 512 });
 * cache.dispose();
 * ```
 */
export class ConcatKVCache extends KVCacheContainer<ConcatStorage> {
  constructor(options: KVCacheOptions) {
    super(options, new ConcatStorage(options.numLayers, options.kvDtype));
  }
}
