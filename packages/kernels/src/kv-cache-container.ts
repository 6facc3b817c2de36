import * as tf from '@tensorflow/tfjs-core';
import { CacheStateError, DisposedError, type KVDtype } from '@kvt/core';
import type { KVCache, KVCacheOptions } from './kv-cache.js';

/** Where a forward pass writes: what the container knows and every storage needs. */
export interface WriteContext {
  /** Sequences held. */
  readonly rows: number;
  /** Positions already written (the new ones go at `[start, start + n)`). */
  readonly start: number;
  /** Left padding of each row (masked from attention). */
  readonly padding: readonly number[];
}

/**
 * What a backend supplies for a KV cache: the K/V storage of every layer and the kernel that appends to it and
 * attends over it. The {@link KVCacheContainer} around it does the bookkeeping (rows, length, padding, argument
 * checks, growth calls, disposal), so a storage holds no length of its own.
 */
export interface KVStorage {
  /** Positions the storage holds per row before it must grow. */
  readonly capacity: number;
  /** Bytes held outside tfjs tensors (see `KVCache.hostBytes`). */
  readonly hostBytes?: number;
  /** Bytes of K/V held, where that is not rows × capacity (blocks shared between rows count once). */
  readonly bytes?: number;
  /** Paged storages: blocks held (a shared one once) and blocks shared with another row or cache. */
  readonly blocks?: number;
  readonly sharedBlocks?: number;
  /** Paged storages: positions per block. */
  readonly blockSize?: number;
  /** K/V bytes written since the storage was created (see `Cache.bytesWritten`), where it counts them. */
  readonly bytesWritten?: number;
  /** Backend kernels that read and write this storage directly (see `KVCache.kernels`). */
  readonly kernels?: ReadonlySet<string>;
  /** Makes room for `needed` positions per row, keeping `[0, length)`. Called before layer 0 writes. */
  reserve(needed: number, length: number, rows: number): void;
  /**
   * Appends k, v `[rows, kvHeads, n, headDim]` at `[start, start + n)` of `layer`; returns attention of q
   * `[rows, heads, n, headDim]` (scaled) over positions `[padding[r], start + i]`.
   */
  attend(layer: number, q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, at: WriteContext): tf.Tensor4D;
  /**
   * Appends k, v like {@link attend} with no queries: what filling a cache from a saved state or a sliding window's
   * rewrite needs. Where absent, {@link KVCacheContainer.write} attends with zero queries and drops the result.
   */
  append?(layer: number, k: tf.Tensor4D, v: tf.Tensor4D, at: WriteContext): void;
  /** Called once after every layer has written a forward pass's positions. */
  advanced?(): void;
  /** Row i becomes row `indices[i]` (positions `[0, length)` are what matters). */
  reorder(indices: readonly number[], length: number, rows: number): void;
  /** Forgets positions ≥ `length` (storages that mask them need do nothing). */
  truncate?(length: number): void;
  /** An independent copy holding positions `[0, length)`. */
  fork(length: number, rows: number): KVStorage;
  /**
   * K and V of `layer`, positions `[0, length)` of every row: `[rows, kvHeads, length, headDim]` each (a copy; read
   * back asynchronously where the storage is on a GPU).
   */
  read(layer: number, length: number, rows: number): Promise<{ k: Float32Array; v: Float32Array }>;
  dispose(): void;
}

/**
 * Bytes one position of one head takes in K (or V) stored as `dtype`: headDim values of 4, 2 or 1 bytes, plus an int8
 * position's scale byte. (An int8 cache keeps the block being filled as fp16, and its key offsets: the storage counts those.)
 *
 * @example
 * ```ts
 * kvBytesPerPosition('int8', 64); // 65
 * ```
 */
export function kvBytesPerPosition(dtype: KVDtype, headDim: number): number {
  return dtype === 'fp32' ? 4 * headDim : dtype === 'fp16' ? 2 * headDim : headDim + 1;
}

/** The argument checks every KV cache shares. */
export const cacheChecks = {
  /** setPadding: only on an empty cache, one entry per row. */
  padding(padding: readonly number[], rows: number, length: number): number[] {
    if (length !== 0) throw new CacheStateError('setPadding is only allowed on an empty cache.');
    if (padding.length !== rows) throw new CacheStateError(`setPadding needs ${rows} rows, got ${padding.length}.`);
    return [...padding];
  },
  /** reorder: every index names an existing row. */
  reorder(indices: readonly number[], rows: number): void {
    for (const i of indices)
      if (!Number.isInteger(i) || i < 0 || i >= rows) throw new CacheStateError(`reorder index ${i} is outside the cache's ${rows} rows.`);
  },
  /** truncate: back to a length the cache holds. */
  truncate(length: number, current: number): void {
    if (!Number.isInteger(length) || length < 0 || length > current)
      throw new CacheStateError(`truncate(${length}): the cache holds ${current} positions.`);
  },
  /** append: never past the model's positions. */
  room(current: number, added: number, maxLength: number): void {
    if (current + added > maxLength)
      throw new CacheStateError(`The cache holds ${current} positions; ${added} more would pass the model's ${maxLength}.`);
  },
};

/**
 * The one KV cache container: rows, length, left padding, argument checks, growth calls, fork and dispose, around
 * a backend's {@link KVStorage}. Every backend's cache is one of these.
 *
 * @example
 * ```ts
 * const cache = new KVCacheContainer(options, myStorage);
 * cache.setPadding([0]);
 * ```
 */
export class KVCacheContainer<S extends KVStorage = KVStorage> implements KVCache {
  readonly numLayers: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly maxLength: number;
  readonly kvDtype: KVDtype;
  private rows: number;
  private len = 0;
  private pads: number[];
  private isDisposed = false;

  constructor(
    options: KVCacheOptions,
    /** The backend's layer storage (kernels that own it read it through here). */
    readonly storage: S,
  ) {
    this.numLayers = options.numLayers;
    this.numKvHeads = options.numKvHeads;
    this.headDim = options.headDim;
    this.maxLength = options.maxLength;
    this.kvDtype = options.kvDtype ?? 'fp32';
    this.rows = options.batchSize;
    this.pads = new Array<number>(options.batchSize).fill(0);
  }

  get batchSize(): number {
    return this.rows;
  }
  get length(): number {
    return this.len;
  }
  get capacity(): number {
    return this.storage.capacity;
  }
  /**
   * The storage's own count where it shares memory between rows (paged blocks), else 2 × layers × rows × kvHeads ×
   * capacity × bytes per position and head (see {@link kvBytesPerPosition}).
   */
  get bytes(): number {
    return this.storage.bytes ?? 2 * this.numLayers * this.rows * this.numKvHeads * this.storage.capacity * kvBytesPerPosition(this.kvDtype, this.headDim);
  }
  /** Paged storages: blocks in use (a shared one once) and blocks shared; undefined for other storages. */
  get blocks(): { readonly inUse: number; readonly shared: number } | undefined {
    const { blocks, sharedBlocks } = this.storage;
    return blocks === undefined ? undefined : { inUse: blocks, shared: sharedBlocks ?? 0 };
  }
  /** K/V bytes written so far (see `Cache.bytesWritten`); undefined where the storage does not count them. */
  get bytesWritten(): number | undefined {
    return this.storage.bytesWritten;
  }
  /** Paged storages: positions per block; undefined for other storages. */
  get blockSize(): number | undefined {
    return this.storage.blockSize;
  }
  get hostBytes(): number | undefined {
    return this.isDisposed ? (this.storage.hostBytes === undefined ? undefined : 0) : this.storage.hostBytes;
  }
  get kernels(): ReadonlySet<string> | undefined {
    return this.storage.kernels;
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

  /**
   * Checks a write of `n` positions by `rows` rows at `layer`, and grows the storage at layer 0 when needed; what
   * {@link attend} and the backend kernels that write the storage directly call first.
   */
  prepareWrite(layer: number, rows: number, n: number): WriteContext {
    this.check();
    if (rows !== this.rows) throw new CacheStateError(`attend got ${rows} rows; the cache holds ${this.rows}.`);
    cacheChecks.room(this.len, n, this.maxLength);
    if (layer === 0 && this.len + n > this.storage.capacity) this.storage.reserve(this.len + n, this.len, this.rows);
    return { rows: this.rows, start: this.len, padding: this.pads };
  }

  attend(layer: number, q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D): tf.Tensor4D {
    const at = this.prepareWrite(layer, q.shape[0], k.shape[2]);
    return this.storage.attend(layer, q, k, v, at);
  }

  advance(n: number): void {
    this.storage.advanced?.();
    this.len += n;
  }

  reorder(indices: readonly number[]): void {
    this.check();
    cacheChecks.reorder(indices, this.rows);
    this.storage.reorder(indices, this.len, this.rows);
    this.pads = indices.map((i) => this.pads[i]!);
    this.rows = indices.length;
  }

  truncate(length: number): void {
    this.check();
    cacheChecks.truncate(length, this.len);
    if (length === this.len) return;
    this.storage.truncate?.(length);
    this.len = length;
  }

  /** K and V of `layer` over the valid positions: `[rows, kvHeads, length, headDim]` each (a copy, for saving). */
  read(layer: number): Promise<{ k: Float32Array; v: Float32Array }> {
    this.check();
    if (!Number.isInteger(layer) || layer < 0 || layer >= this.numLayers) throw new CacheStateError(`read(${layer}): the cache has ${this.numLayers} layers.`);
    return this.storage.read(layer, this.len, this.rows);
  }

  /**
   * Fills an empty cache with `length` positions per row: every layer's K and V `[rows, kvHeads, length, headDim]`
   * and the rows' left padding (a restored state). Written through the storage's own append, so every backend
   * restores what any backend saved.
   */
  write(layers: readonly { k: Float32Array; v: Float32Array }[], length: number, padding: readonly number[]): void {
    this.check();
    if (this.len !== 0) throw new CacheStateError('write() fills an empty cache; this one holds positions.');
    const size = this.rows * this.numKvHeads * length * this.headDim;
    if (layers.length !== this.numLayers || layers.some((l) => l.k.length !== size || l.v.length !== size))
      throw new CacheStateError(`write() needs ${this.numLayers} layers of K and V with ${size} values each.`);
    this.setPadding(padding);
    if (length === 0) return;
    const shape: [number, number, number, number] = [this.rows, this.numKvHeads, length, this.headDim];
    layers.forEach((l, layer) => {
      const at = this.prepareWrite(layer, this.rows, length);
      // the storage keeps what it stores; every temporary (and, without append, the attention of zero queries) is dropped
      tf.tidy(() => {
        const [k, v] = [l.k, l.v].map((d) => tf.tensor4d(d, shape));
        if (this.storage.append) this.storage.append(layer, k!, v!, at);
        else this.storage.attend(layer, tf.zeros(shape), k!, v!, at);
      });
    });
    this.advance(length);
  }

  fork(): KVCacheContainer<S> {
    this.check();
    const options = { numLayers: this.numLayers, batchSize: this.rows, numKvHeads: this.numKvHeads, headDim: this.headDim, maxLength: this.maxLength, kvDtype: this.kvDtype };
    const copy = new KVCacheContainer(options, this.storage.fork(this.len, this.rows) as S);
    copy.len = this.len;
    copy.pads = [...this.pads];
    return copy;
  }

  dispose(): void {
    if (this.isDisposed) return;
    this.storage.dispose();
    this.isDisposed = true;
  }

  private check(): void {
    if (this.isDisposed) throw new DisposedError('KV cache');
  }
}
