import * as tf from '@tensorflow/tfjs-core';
import { DisposedError } from '@kvt/core';
import { causalPaddingMask } from './attention-mask.js';
import type { KVCache, KVCacheOptions } from '@kvt/kernels';
import { cacheChecks } from './cache-checks.js';
import { cloneStore, gatherStoreRows, mapStores, type TensorStore } from './tensor-stores.js';

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
 * The reference KV cache: each step concatenates the new K/V onto the old (copying the whole cache: O(length) per
 * token). Simple and exact on every backend; the backend packages replace it with caches that write in place.
 *
 * @example
 * ```ts
 * const cache = new ConcatKVCache({ numLayers: 2, batchSize: 1, numKvHeads: 4, headDim: 16, maxLength: 512 });
 * ```
 */
export class ConcatKVCache implements KVCache {
  readonly numLayers: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly maxLength: number;
  private keys: TensorStore; // per layer [batch, kvHeads, length, headDim]
  private values: TensorStore;
  private rows: number;
  private len = 0;
  private pads: number[];
  private isDisposed = false;

  constructor(options: KVCacheOptions) {
    this.numLayers = options.numLayers;
    this.numKvHeads = options.numKvHeads;
    this.headDim = options.headDim;
    this.maxLength = options.maxLength;
    this.rows = options.batchSize;
    this.keys = new Array(options.numLayers).fill(null);
    this.values = new Array(options.numLayers).fill(null);
    this.pads = new Array(options.batchSize).fill(0);
  }

  get batchSize(): number {
    return this.rows;
  }
  get length(): number {
    return this.len;
  }
  get capacity(): number {
    return this.len;
  }
  get bytes(): number {
    return 2 * this.numLayers * this.rows * this.numKvHeads * this.len * this.headDim * 4;
  }
  get padding(): readonly number[] {
    return this.pads;
  }
  get disposed(): boolean {
    return this.isDisposed;
  }

  setPadding(padding: readonly number[]): void {
    this.check();
    this.pads = cacheChecks.padding(padding, this.rows, this.len);
  }

  attend(layer: number, q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D): tf.Tensor4D {
    this.check();
    const n = k.shape[2];
    cacheChecks.room(this.len, n, this.maxLength);
    const oldK = this.keys[layer];
    const oldV = this.values[layer];
    const K = oldK ? tf.concat([oldK, k], 2) : tf.clone(k);
    const V = oldV ? tf.concat([oldV, v], 2) : tf.clone(v);
    oldK?.dispose();
    oldV?.dispose();
    this.keys[layer] = tf.keep(K);
    this.values[layer] = tf.keep(V);
    const T = this.len + n;
    const mask = tf.tensor4d(causalPaddingMask(this.pads, this.len, n, T), [this.rows, 1, n, T]);
    return groupedAttention(q, K, V, mask);
  }

  advance(n: number): void {
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
    if (length === this.len) return;
    mapStores([this.keys, this.values], (t) => (length === 0 ? null : tf.slice(t, [0, 0, 0, 0], [-1, -1, length, -1])));
    this.len = length;
  }

  fork(): ConcatKVCache {
    this.check();
    const copy = new ConcatKVCache({
      numLayers: this.numLayers,
      batchSize: this.rows,
      numKvHeads: this.numKvHeads,
      headDim: this.headDim,
      maxLength: this.maxLength,
    });
    copy.keys = cloneStore(this.keys);
    copy.values = cloneStore(this.values);
    copy.len = this.len;
    copy.pads = [...this.pads];
    return copy;
  }

  dispose(): void {
    if (this.isDisposed) return;
    for (const t of [...this.keys, ...this.values]) t?.dispose();
    this.keys.fill(null);
    this.values.fill(null);
    this.isDisposed = true;
  }

  private check(): void {
    if (this.isDisposed) throw new DisposedError('KV cache');
  }
}
