import * as tf from '@tensorflow/tfjs-core';
import { CacheStateError, DisposedError } from '@kvt/core';
import { causalPaddingMask } from './attention-mask.js';
import { groupedAttention } from './concat-cache.js';
import type { KVCache, KVCacheOptions } from './kv-cache.js';

/** Decode steps with at most this many new positions use the fused loop; longer prefills use tfjs matMuls. */
const FUSED_MAX_NEW = 8;

/**
 * A KV cache in host memory (`Float32Array` per layer, `[batch, kvHeads, capacity, headDim]`) for the CPU and WASM
 * backends. Appending writes the new rows in place: O(1) in the length, with capacity doubling when full (amortized
 * growth, never past the model's positions). Decode-step attention is one fused loop that reads only the valid
 * positions `[padding[b], length)`: no concat, no copy of the cache, no tensor per step but the output.
 * See docs/decisions/0002-kv-cache-storage.md.
 *
 * @example
 * ```ts
 * registerKVCacheFactory('cpu', (o) => new HostKVCache(o));
 * ```
 */
export class HostKVCache implements KVCache {
  readonly numLayers: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly maxLength: number;
  private keys: Float32Array[]; // per layer [batch, kvHeads, capacity, headDim]
  private values: Float32Array[];
  private rows: number;
  private cap: number;
  private len = 0;
  private pads: number[];
  private isDisposed = false;
  private scores = new Float32Array(0);

  constructor(options: KVCacheOptions) {
    this.numLayers = options.numLayers;
    this.numKvHeads = options.numKvHeads;
    this.headDim = options.headDim;
    this.maxLength = options.maxLength;
    this.rows = options.batchSize;
    this.cap = Math.min(this.maxLength, Math.max(16, options.capacityHint ?? 64));
    this.keys = Array.from({ length: this.numLayers }, () => new Float32Array(this.rowSize * this.rows));
    this.values = Array.from({ length: this.numLayers }, () => new Float32Array(this.rowSize * this.rows));
    this.pads = new Array<number>(this.rows).fill(0);
  }

  /** Floats of one batch row of one layer. */
  private get rowSize(): number {
    return this.numKvHeads * this.cap * this.headDim;
  }
  get batchSize(): number {
    return this.rows;
  }
  get length(): number {
    return this.len;
  }
  get capacity(): number {
    return this.cap;
  }
  get bytes(): number {
    return 2 * this.numLayers * this.rows * this.rowSize * 4;
  }
  get padding(): readonly number[] {
    return this.pads;
  }
  get disposed(): boolean {
    return this.isDisposed;
  }

  setPadding(padding: readonly number[]): void {
    this.check();
    if (this.len !== 0) throw new CacheStateError('setPadding is only allowed on an empty cache.');
    if (padding.length !== this.rows) throw new CacheStateError(`setPadding needs ${this.rows} rows, got ${padding.length}.`);
    this.pads = [...padding];
  }

  /** Grows every layer's storage to hold `needed` positions (doubling), copying the valid rows. */
  private ensureCapacity(needed: number): void {
    if (needed <= this.cap) return;
    if (needed > this.maxLength)
      throw new CacheStateError(`The cache holds ${this.len} positions; ${needed - this.len} more would pass the model's ${this.maxLength}.`);
    const newCap = Math.min(this.maxLength, Math.max(needed, 2 * this.cap));
    const { headDim: hd, numKvHeads: kvh } = this;
    const grow = (old: Float32Array) => {
      const out = new Float32Array(this.rows * kvh * newCap * hd);
      for (let bh = 0; bh < this.rows * kvh; bh++)
        out.set(old.subarray(bh * this.cap * hd, (bh * this.cap + this.len) * hd), bh * newCap * hd);
      return out;
    };
    this.keys = this.keys.map(grow);
    this.values = this.values.map(grow);
    this.cap = newCap;
  }

  attend(layer: number, q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D): tf.Tensor4D {
    this.check();
    const [b, H, n, hd] = q.shape;
    const kvh = this.numKvHeads;
    if (b !== this.rows) throw new CacheStateError(`attend got ${b} rows; the cache holds ${this.rows}.`);
    if (layer === 0) this.ensureCapacity(this.len + n);
    // write the new rows in place: K[b, h, len + i, :] = k[b, h, i, :]
    const cap = this.cap;
    const kIn = k.dataSync() as Float32Array;
    const vIn = v.dataSync() as Float32Array;
    const K = this.keys[layer]!;
    const V = this.values[layer]!;
    for (let bh = 0; bh < b * kvh; bh++) {
      K.set(kIn.subarray(bh * n * hd, (bh + 1) * n * hd), (bh * cap + this.len) * hd);
      V.set(vIn.subarray(bh * n * hd, (bh + 1) * n * hd), (bh * cap + this.len) * hd);
    }
    const total = this.len + n;
    if (n > FUSED_MAX_NEW) {
      // a long prefill: matMuls over the valid rows (copied once into tensors)
      const view = (S: Float32Array) => {
        const out = new Float32Array(b * kvh * total * hd);
        for (let bh = 0; bh < b * kvh; bh++) out.set(S.subarray(bh * cap * hd, (bh * cap + total) * hd), bh * total * hd);
        return tf.tensor4d(out, [b, kvh, total, hd]);
      };
      const mask = tf.tensor4d(causalPaddingMask(this.pads, this.len, n, total), [b, 1, n, total]);
      return groupedAttention(q, view(K), view(V), mask);
    }
    return tf.tensor4d(this.fusedAttention(q.dataSync() as Float32Array, K, V, b, H, n), [b, H, n, hd]);
  }

  /** softmax(q · Kᵀ) · V over positions [padding[b], len + i] of each row: one pass, nothing allocated but the output. */
  private fusedAttention(qd: Float32Array, K: Float32Array, V: Float32Array, b: number, H: number, n: number): Float32Array {
    const hd = this.headDim;
    const cap = this.cap;
    const groups = H / this.numKvHeads;
    const out = new Float32Array(b * H * n * hd);
    if (this.scores.length < this.len + n) this.scores = new Float32Array(this.cap);
    const scores = this.scores;
    for (let r = 0; r < b; r++) {
      const start = this.pads[r]!;
      for (let h = 0; h < H; h++) {
        const base = (r * this.numKvHeads + Math.floor(h / groups)) * cap * hd;
        for (let i = 0; i < n; i++) {
          const qo = ((r * H + h) * n + i) * hd;
          const last = this.len + i;
          let max = -Infinity;
          for (let j = start; j <= last; j++) {
            const ko = base + j * hd;
            let s = 0;
            for (let d = 0; d < hd; d++) s += qd[qo + d]! * K[ko + d]!;
            scores[j] = s;
            if (s > max) max = s;
          }
          let sum = 0;
          for (let j = start; j <= last; j++) {
            const e = Math.exp(scores[j]! - max);
            scores[j] = e;
            sum += e;
          }
          const inv = 1 / sum;
          for (let j = start; j <= last; j++) {
            const p = scores[j]! * inv;
            const vo = base + j * hd;
            for (let d = 0; d < hd; d++) out[qo + d] += p * V[vo + d]!;
          }
        }
      }
    }
    return out;
  }

  advance(n: number): void {
    this.len += n;
  }

  reorder(indices: readonly number[]): void {
    this.check();
    for (const i of indices)
      if (!Number.isInteger(i) || i < 0 || i >= this.rows) throw new CacheStateError(`reorder index ${i} is outside the cache's ${this.rows} rows.`);
    const rs = this.rowSize;
    const used = this.numKvHeads * this.cap * this.headDim; // whole rows: the valid prefix of each head is inside
    const move = (S: Float32Array) => {
      const out = new Float32Array(indices.length * rs);
      indices.forEach((from, to) => out.set(S.subarray(from * rs, from * rs + used), to * rs));
      return out;
    };
    this.keys = this.keys.map(move);
    this.values = this.values.map(move);
    this.pads = indices.map((i) => this.pads[i]!);
    this.rows = indices.length;
  }

  truncate(length: number): void {
    this.check();
    if (!Number.isInteger(length) || length < 0 || length > this.len)
      throw new CacheStateError(`truncate(${length}): the cache holds ${this.len} positions.`);
    this.len = length;
  }

  fork(): HostKVCache {
    this.check();
    const copy = new HostKVCache({
      numLayers: this.numLayers,
      batchSize: this.rows,
      numKvHeads: this.numKvHeads,
      headDim: this.headDim,
      maxLength: this.maxLength,
    });
    copy.cap = this.cap;
    copy.keys = this.keys.map((a) => a.slice());
    copy.values = this.values.map((a) => a.slice());
    copy.len = this.len;
    copy.pads = [...this.pads];
    return copy;
  }

  dispose(): void {
    this.keys = [];
    this.values = [];
    this.isDisposed = true;
  }

  private check(): void {
    if (this.isDisposed) throw new DisposedError('KV cache');
  }
}
