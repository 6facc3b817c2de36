import * as tf from '@tensorflow/tfjs-core';
import { KVCacheContainer, KvtCacheAttend, KvtLlamaBlock, runCacheAttend, type KVCacheOptions, type KVStorage, type WriteContext } from '@kvt/kernels';
import { UnsupportedError } from '@kvt/core';
import { halfToFloat } from '@kvt/models';
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
 * The WASM backend's K/V storage: K and V live in tfjs-wasm's own heap, where the kernels that write and read them
 * (kvt-kernels.c) run, so a decode step moves no K/V bytes through JavaScript. Each sequence (row) is one allocation
 * `[layers, K|V, kvHeads, capacity, headDim]` of float32, fp16 or int8 values (int8: each head's region then holds a
 * float32 scale per position; `kvDtype`): a beam reorder keeps every row that survives where it is and copies
 * only the rows that are duplicated (an identity reorder or a permutation copies nothing). Capacity doubles when
 * full (amortized O(1) appends, never past the model's positions).
 */
export class WasmStorage implements KVStorage {
  readonly kernels: ReadonlySet<string> = new Set([KvtLlamaBlock, KvtCacheAttend]);
  private readonly heap: WasmHeap;
  private rowsAt: number[];
  private cap: number;

  constructor(
    private readonly options: KVCacheOptions,
    rows = options.batchSize,
    cap = Math.min(options.maxLength, Math.max(16, options.capacityHint ?? 64)),
  ) {
    if (options.kvDtype !== undefined && options.kvDtype !== 'fp32' && options.headDim % 4 !== 0)
      throw new UnsupportedError(`The wasm KV cache stores ${options.kvDtype} K/V for head sizes that are a multiple of 4 (this model's is ${options.headDim}); use kvDtype: 'fp32'.`);
    this.heap = heapOf(tf.backend());
    this.cap = cap;
    this.rowsAt = Array.from({ length: rows }, () => this.heap.malloc(this.rowBytes(cap)));
  }

  /** Bytes of one stored value (fp32, fp16, int8). */
  private get valueBytes(): number {
    return { fp32: 4, fp16: 2, int8: 1 }[this.options.kvDtype ?? 'fp32'];
  }
  /** The kernels' code of the stored type (kvt-kernels.c's KV_*). */
  get dtypeCode(): number {
    return { fp32: 0, fp16: 1, int8: 2 }[this.options.kvDtype ?? 'fp32'];
  }
  /** Bytes of one head's region at capacity `cap`: cap × headDim values, then (int8) cap float32 scales; 16-aligned. */
  headBytes(cap: number): number {
    const scales = this.options.kvDtype === 'int8' ? 4 * cap : 0;
    return Math.ceil((cap * this.options.headDim * this.valueBytes + scales) / 16) * 16;
  }
  /** Bytes of one row: every layer's K and V at capacity `cap`. */
  private rowBytes(cap: number): number {
    return 2 * this.options.numLayers * this.options.numKvHeads * this.headBytes(cap);
  }
  /** Byte offset of (layer, K = 0 | V = 1, head) inside a row of capacity `cap`. */
  private headAt(layer: number, kv: 0 | 1, head: number, cap: number): number {
    return ((layer * 2 + kv) * this.options.numKvHeads + head) * this.headBytes(cap);
  }

  get capacity(): number {
    return this.cap;
  }
  /** The heap bytes allocated for K/V (outside any tensor, so not in `tf.memory()`). */
  get hostBytes(): number {
    return this.rowsAt.length * this.rowBytes(this.cap);
  }

  /** Copies the first `length` positions of every (layer, K/V, head) of row `src` (capacity `srcCap`) into `dst`. */
  private copyRow(src: number, srcCap: number, dst: number, dstCap: number, length: number): void {
    const u8 = this.heap.u8;
    const hd = this.options.headDim;
    const bytes = length * hd * this.valueBytes;
    if (bytes === 0) return;
    const int8 = this.options.kvDtype === 'int8';
    for (let l = 0; l < this.options.numLayers; l++)
      for (const kv of [0, 1] as const)
        for (let h = 0; h < this.options.numKvHeads; h++) {
          const from = src + this.headAt(l, kv, h, srcCap);
          const to = dst + this.headAt(l, kv, h, dstCap);
          u8.copyWithin(to, from, from + bytes);
          // int8: the scales follow each region's cap values
          if (int8) u8.copyWithin(to + dstCap * hd, from + srcCap * hd, from + srcCap * hd + 4 * length);
        }
  }

  reserve(needed: number, length: number): void {
    const cap = Math.min(this.options.maxLength, Math.max(needed, 2 * this.cap));
    this.rowsAt = this.rowsAt.map((at) => {
      const next = this.heap.malloc(this.rowBytes(cap));
      this.copyRow(at, this.cap, next, cap, length);
      this.heap.free(at);
      return next;
    });
    this.cap = cap;
  }

  /**
   * Writes `layer`'s pointer tables into the heap's scratch, with `extraBytes` more scratch after them, for a kernel
   * that writes this storage directly.
   */
  tables(layer: number, at: WriteContext, extraBytes: number): LayerTables {
    const b = this.rowsAt.length;
    const tableBytes = Math.ceil((3 * b * 4) / 16) * 16;
    const base = this.heap.scratch(tableBytes + extraBytes);
    const i32 = this.heap.i32;
    for (let r = 0; r < b; r++) {
      i32[base / 4 + r] = this.rowsAt[r]! + this.headAt(layer, 0, 0, this.cap);
      i32[base / 4 + b + r] = this.rowsAt[r]! + this.headAt(layer, 1, 0, this.cap);
      i32[base / 4 + 2 * b + r] = at.padding[r]!;
    }
    return { kRows: base, vRows: base + 4 * b, pads: base + 8 * b, free: base + tableBytes };
  }

  attend(layer: number, q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, at: WriteContext): tf.Tensor4D {
    return runCacheAttend(q, k, v, { storage: this, layer, at });
  }

  reorder(indices: readonly number[], length: number): void {
    if (indices.length === this.rowsAt.length && indices.every((i, r) => i === r)) return;
    // a row's first taker keeps its storage; later takers get a copy, into storage no one keeps where there is some
    const kept = new Set<number>();
    const next = indices.map((src) => (kept.has(src) ? -1 : (kept.add(src), this.rowsAt[src]!)));
    const spare = this.rowsAt.filter((_, r) => !kept.has(r));
    next.forEach((at, i) => {
      if (at !== -1) return;
      const into = spare.pop() ?? this.heap.malloc(this.rowBytes(this.cap));
      this.copyRow(this.rowsAt[indices[i]!]!, this.cap, into, this.cap, length);
      next[i] = into;
    });
    spare.forEach((at) => this.heap.free(at));
    this.rowsAt = next;
  }

  read(layer: number, length: number): { k: Float32Array; v: Float32Array } {
    const { numKvHeads: kvh, headDim: hd } = this.options;
    const [k, v] = [new Float32Array(this.rowsAt.length * kvh * length * hd), new Float32Array(this.rowsAt.length * kvh * length * hd)];
    const buffer = this.heap.u8.buffer;
    this.rowsAt.forEach((at, r) =>
      [k, v].forEach((out, kv) => {
        for (let h = 0; h < kvh; h++) {
          const head = at + this.headAt(layer, kv as 0 | 1, h, this.cap);
          const o = (r * kvh + h) * length * hd;
          if (this.options.kvDtype === 'fp16') {
            const halves = new Uint16Array(buffer, head, length * hd);
            for (let i = 0; i < halves.length; i++) out[o + i] = halfToFloat(halves[i]!);
          } else if (this.options.kvDtype === 'int8') {
            const q = new Int8Array(buffer, head, length * hd);
            const scales = new Float32Array(buffer, head + this.cap * hd, length);
            for (let i = 0; i < q.length; i++) out[o + i] = Math.fround(scales[Math.floor(i / hd)]! * q[i]!);
          } else out.set(new Float32Array(buffer, head, length * hd), o);
        }
      }),
    );
    return { k, v };
  }

  fork(length: number, rows: number): WasmStorage {
    const copy = new WasmStorage(this.options, rows, this.cap);
    this.rowsAt.forEach((at, r) => this.copyRow(at, this.cap, copy.rowsAt[r]!, copy.cap, length));
    return copy;
  }

  dispose(): void {
    this.rowsAt.forEach((at) => this.heap.free(at));
    this.rowsAt = [];
  }
}

/**
 * The WASM backend's KV cache: {@link WasmStorage} in the shared container.
 *
 * @example
 * ```ts
 * import '@kvt/backend-wasm';
 * const cache = new WasmKVCache({ numLayers: 2, batchSize: 1, numKvHeads: 2, headDim: 8, maxLength: 64 });
 * cache.dispose();
 * ```
 */
export class WasmKVCache extends KVCacheContainer<WasmStorage> {
  constructor(options: KVCacheOptions) {
    super(options, new WasmStorage(options));
  }
}
