import * as tf from '@tensorflow/tfjs-core';
import type { KVDtype } from '@kvt/core';
import { KVCacheContainer, type KVCacheOptions, type KVStorage, type WriteContext } from '@kvt/kernels';
import { causalPaddingMask } from './attention-mask.js';
import { cloneStore, disposeStores, gatherStoreRows, mapStores, readStores, storeBytes, type TensorStore } from './tensor-stores.js';
import { kvRoundTrip } from './kv-dtype.js';

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

  constructor(
    numLayers: number,
    /** K/V stored as this type: each appended row is rounded as such a cache rounds it ({@link kvRoundTrip}). */
    private readonly kvDtype: KVDtype = 'fp32',
  ) {
    this.keys = new Array(numLayers).fill(null);
    this.values = new Array(numLayers).fill(null);
  }

  get capacity(): number {
    return this.keys[0]?.shape[2] ?? 0;
  }

  reserve(): void {} // concat grows on every write

  attend(layer: number, q: tf.Tensor4D, kIn: tf.Tensor4D, vIn: tf.Tensor4D, at: WriteContext): tf.Tensor4D {
    const round = (t: tf.Tensor4D) => (this.kvDtype === 'fp32' ? t : tf.tensor4d(kvRoundTrip(t.dataSync() as Float32Array, t.shape[3], this.kvDtype), t.shape));
    const [k, v] = [round(kIn), round(vIn)];
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
    return groupedAttention(q, K, V, mask);
  }

  reorder(indices: readonly number[]): void {
    gatherStoreRows([this.keys, this.values], indices);
    this.bytesWritten += storeBytes(this.keys, this.values);
  }

  truncate(length: number): void {
    mapStores([this.keys, this.values], (t) => (length === 0 ? null : tf.slice(t, [0, 0, 0, 0], [-1, -1, length, -1])));
    this.bytesWritten += storeBytes(this.keys, this.values);
  }

  read(layer: number, length: number): Promise<{ k: Float32Array; v: Float32Array }> {
    return readStores(this.keys, this.values, layer, length);
  }

  fork(): ConcatStorage {
    const copy = new ConcatStorage(this.keys.length, this.kvDtype);
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
