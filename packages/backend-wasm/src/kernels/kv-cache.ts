import * as tf from '@tensorflow/tfjs-core';
import { DisposedError, CacheStateError } from '@kvt/core';
import { KvtCacheAttend, KvtLlamaBlock, runCacheAttend, type KVCache, type KVCacheOptions } from '@kvt/kernels';
import { cacheChecks } from '@kvt/models';
import { heapOf, type WasmHeap } from './heap.js';

/** Where a kernel finds one layer's storage: pointer tables in the heap's scratch, then free scratch floats. */
export interface LayerTables {
  /** Int32 [rows]: K of each row; then [rows] V; then [rows] left padding. */
  readonly kRows: number;
  readonly vRows: number;
  readonly pads: number;
  /** First byte of scratch after the tables (16-byte aligned). */
  readonly free: number;
}

/**
 * The WASM backend's KV cache: K and V live in tfjs-wasm's own heap, where the kernels that write and read them
 * (kvt-kernels.c) run, so a decode step moves no K/V bytes through JavaScript. Each sequence (row) is one allocation
 * `[layers, K|V, kvHeads, capacity, headDim]`: a beam reorder keeps every row that survives where it is and copies
 * only the rows that are duplicated (an identity reorder copies nothing). Capacity doubles when full (amortized
 * O(1) appends, never past the model's positions).
 *
 * @example
 * ```ts
 * import '@kvt/backend-wasm';
 * const cache = new WasmKVCache({ numLayers: 2, batchSize: 1, numKvHeads: 2, headDim: 8, maxLength: 64 });
 * cache.dispose();
 * ```
 */
export class WasmKVCache implements KVCache {
  readonly numLayers: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly maxLength: number;
  readonly kernels: ReadonlySet<string> = new Set([KvtLlamaBlock, KvtCacheAttend]);
  private readonly heap: WasmHeap;
  private rowsAt: number[];
  private cap: number;
  private len = 0;
  private pads: number[];
  private isDisposed = false;

  constructor(options: KVCacheOptions) {
    this.numLayers = options.numLayers;
    this.numKvHeads = options.numKvHeads;
    this.headDim = options.headDim;
    this.maxLength = options.maxLength;
    this.heap = heapOf(tf.backend());
    this.cap = Math.min(this.maxLength, Math.max(16, options.capacityHint ?? 64));
    this.rowsAt = Array.from({ length: options.batchSize }, () => this.heap.malloc(this.rowBytes(this.cap)));
    this.pads = new Array<number>(options.batchSize).fill(0);
  }

  /** Bytes of one row: every layer's K and V at capacity `cap`. */
  private rowBytes(cap: number): number {
    return 2 * this.numLayers * this.numKvHeads * cap * this.headDim * 4;
  }
  /** Byte offset of (layer, K = 0 | V = 1, head) inside a row of capacity `cap`. */
  private headAt(layer: number, kv: 0 | 1, head: number, cap: number): number {
    return ((layer * 2 + kv) * this.numKvHeads + head) * cap * this.headDim * 4;
  }

  get batchSize(): number {
    return this.rowsAt.length;
  }
  get length(): number {
    return this.len;
  }
  get capacity(): number {
    return this.cap;
  }
  get bytes(): number {
    return this.rowsAt.length * this.rowBytes(this.cap);
  }
  /** The heap bytes allocated for K/V (outside any tensor, so not in `tf.memory()`); equal to {@link bytes}. */
  get hostBytes(): number {
    return this.isDisposed ? 0 : this.bytes;
  }
  get padding(): readonly number[] {
    return this.pads;
  }
  get disposed(): boolean {
    return this.isDisposed;
  }

  setPadding(padding: readonly number[]): void {
    this.check();
    this.pads = cacheChecks.padding(padding, this.rowsAt.length, this.len);
  }

  /** Copies the first `len` positions of every (layer, K/V, head) of row `src` (capacity `srcCap`) into `dst`. */
  private copyRow(src: number, srcCap: number, dst: number, dstCap: number): void {
    const u8 = this.heap.u8;
    const bytes = this.len * this.headDim * 4;
    if (bytes === 0) return;
    for (let l = 0; l < this.numLayers; l++)
      for (const kv of [0, 1] as const)
        for (let h = 0; h < this.numKvHeads; h++) {
          const from = src + this.headAt(l, kv, h, srcCap);
          u8.copyWithin(dst + this.headAt(l, kv, h, dstCap), from, from + bytes);
        }
  }

  /**
   * Called by the kernels before writing `n` positions at `layer`: grows the storage at layer 0 when full, checks
   * the rows, and writes this layer's pointer tables into the heap's scratch (`extraBytes` more scratch after them).
   */
  prepareWrite(layer: number, rows: number, n: number, extraBytes: number): LayerTables {
    this.check();
    if (rows !== this.rowsAt.length) throw new CacheStateError(`attend got ${rows} rows; the cache holds ${this.rowsAt.length}.`);
    if (layer === 0 && this.len + n > this.cap) {
      cacheChecks.room(this.len, n, this.maxLength);
      const cap = Math.min(this.maxLength, Math.max(this.len + n, 2 * this.cap));
      this.rowsAt = this.rowsAt.map((at) => {
        const next = this.heap.malloc(this.rowBytes(cap));
        this.copyRow(at, this.cap, next, cap);
        this.heap.free(at);
        return next;
      });
      this.cap = cap;
    }
    const b = this.rowsAt.length;
    const tableBytes = Math.ceil((3 * b * 4) / 16) * 16;
    const at = this.heap.scratch(tableBytes + extraBytes);
    const i32 = this.heap.i32;
    for (let r = 0; r < b; r++) {
      i32[at / 4 + r] = this.rowsAt[r]! + this.headAt(layer, 0, 0, this.cap);
      i32[at / 4 + b + r] = this.rowsAt[r]! + this.headAt(layer, 1, 0, this.cap);
      i32[at / 4 + 2 * b + r] = this.pads[r]!;
    }
    return { kRows: at, vRows: at + 4 * b, pads: at + 8 * b, free: at + tableBytes };
  }

  attend(layer: number, q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D): tf.Tensor4D {
    this.check();
    return runCacheAttend(q, k, v, { cache: this, layer });
  }

  advance(n: number): void {
    this.len += n;
  }

  reorder(indices: readonly number[]): void {
    this.check();
    cacheChecks.reorder(indices, this.rowsAt.length);
    const pads = indices.map((i) => this.pads[i]!);
    if (indices.length === this.rowsAt.length && indices.every((i, r) => i === r)) return;
    // a row's first taker keeps its storage; later takers get a copy, into storage no one keeps where there is some
    const kept = new Set<number>();
    const next = indices.map((src) => (kept.has(src) ? -1 : (kept.add(src), this.rowsAt[src]!)));
    const spare = this.rowsAt.filter((_, r) => !kept.has(r));
    next.forEach((at, i) => {
      if (at !== -1) return;
      const into = spare.pop() ?? this.heap.malloc(this.rowBytes(this.cap));
      this.copyRow(this.rowsAt[indices[i]!]!, this.cap, into, this.cap);
      next[i] = into;
    });
    spare.forEach((at) => this.heap.free(at));
    this.rowsAt = next;
    this.pads = pads;
  }

  truncate(length: number): void {
    this.check();
    cacheChecks.truncate(length, this.len);
    this.len = length;
  }

  fork(): WasmKVCache {
    this.check();
    const copy = new WasmKVCache({
      numLayers: this.numLayers,
      batchSize: this.rowsAt.length,
      numKvHeads: this.numKvHeads,
      headDim: this.headDim,
      maxLength: this.maxLength,
      capacityHint: this.cap,
    });
    copy.len = this.len;
    copy.pads = [...this.pads];
    this.rowsAt.forEach((at, r) => this.copyRow(at, this.cap, copy.rowsAt[r]!, copy.cap));
    return copy;
  }

  dispose(): void {
    if (this.isDisposed) return;
    this.rowsAt.forEach((at) => this.heap.free(at));
    this.rowsAt = [];
    this.isDisposed = true;
  }

  private check(): void {
    if (this.isDisposed) throw new DisposedError('KV cache');
  }
}
