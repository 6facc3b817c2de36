import * as tf from '@tensorflow/tfjs-core';
import { KVCacheContainer, KvtCacheAttend, KvtLlamaBlock, runCacheAttend, type KVCacheOptions, type KVStorage, type WriteContext } from '@kvt/kernels';
import { UnsupportedError } from '@kvt/core';
import { halfToFloat } from '@kvt/models';
import { heapOf, type WasmHeap } from './heap.js';

/** Where a kernel finds one layer's storage: block tables in the heap's scratch, then free scratch floats. */
export interface LayerTables {
  /** Int32 [rows, blocksPerRow]: this layer's K region of each row's blocks; then the same for V; then [rows] left padding. */
  readonly kTabs: number;
  readonly vTabs: number;
  readonly pads: number;
  readonly blocksPerRow: number;
  /** First byte of scratch after the tables (16-byte aligned). */
  readonly free: number;
}

/**
 * Positions per K/V block for a cache of `options`: 64 where a position's head row is 256 bytes or more (the 110M
 * shape: attention then reads each head in 16 KB runs, which the hardware prefetcher follows; measured, decision
 * 0011), else 16 (small heads: finer sharing, and attention is a small part of a step).
 *
 * @example
 * ```ts
 * kvBlockSize({ numLayers: 12, batchSize: 1, numKvHeads: 12, headDim: 64, maxLength: 1024 }); // 64
 * ```
 */
export function kvBlockSize(options: KVCacheOptions): number {
  const valueBytes = { fp32: 4, fp16: 2, int8: 1 }[options.kvDtype ?? 'fp32'];
  return options.headDim * valueBytes >= 256 ? 64 : 16;
}

/** Reference counts of K/V blocks, per heap: forks and reordered rows share blocks across storages. */
const blockRefs = new WeakMap<WasmHeap, Map<number, number>>();

/**
 * The WASM backend's K/V storage, paged: K and V live in tfjs-wasm's own heap, where the kernels that write and read
 * them (kvt-kernels.c) run, so a decode step moves no K/V bytes through JavaScript. Blocks of {@link kvBlockSize}
 * positions, each one allocation holding every layer's `[K|V, kvHeads, block, headDim]` of float32, fp16 or int8
 * values (int8: each head's region then holds a float32 scale per position; `kvDtype`); each row is a table of
 * blocks. Blocks are reference-counted: a beam reorder or a fork copies tables, never K/V, and rows share the
 * prompt's blocks; a row that writes into a block it shares copies that one block first (copy on write).
 */
export class WasmStorage implements KVStorage {
  readonly kernels: ReadonlySet<string> = new Set([KvtLlamaBlock, KvtCacheAttend]);
  private readonly heap: WasmHeap;
  private readonly refs: Map<number, number>;
  /** Each row's blocks (heap offsets). */
  private rows: number[][];
  /** K/V bytes written (see `Cache.bytesWritten`): new rows, and blocks copied on write. */
  bytesWritten = 0;
  /** Positions per block (a power of two) and its log2. */
  readonly blockSize: number;
  private readonly shift: number;

  constructor(
    private readonly options: KVCacheOptions,
    rows = options.batchSize,
    tables?: number[][],
  ) {
    if (options.kvDtype !== undefined && options.kvDtype !== 'fp32' && options.headDim % 4 !== 0)
      throw new UnsupportedError(`The wasm KV cache stores ${options.kvDtype} K/V for head sizes that are a multiple of 4 (this model's is ${options.headDim}); use kvDtype: 'fp32'.`);
    this.heap = heapOf(tf.backend());
    this.blockSize = kvBlockSize(options);
    this.shift = Math.log2(this.blockSize);
    let refs = blockRefs.get(this.heap);
    if (!refs) blockRefs.set(this.heap, (refs = new Map()));
    this.refs = refs;
    this.rows = tables ? tables.map((t) => t.map((b) => this.retain(b))) : Array.from({ length: rows }, () => []);
    const hint = Math.min(options.maxLength, options.capacityHint ?? 0);
    if (!tables && hint > 0) this.reserve(hint);
  }

  /** Bytes of one stored value (fp32, fp16, int8). */
  private get valueBytes(): number {
    return { fp32: 4, fp16: 2, int8: 1 }[this.options.kvDtype ?? 'fp32'];
  }
  /** The kernels' K/V format code: the stored type (kvt-kernels.c's KV_*) | the block's log2 size << 8. */
  get formatCode(): number {
    return { fp32: 0, fp16: 1, int8: 2 }[this.options.kvDtype ?? 'fp32'] | (this.shift << 8);
  }
  /** Bytes of one head's region in a block: blockSize × headDim values, then (int8) blockSize float32 scales; 16-aligned. */
  get headBytes(): number {
    const scales = this.options.kvDtype === 'int8' ? 4 * this.blockSize : 0;
    return Math.ceil((this.blockSize * this.options.headDim * this.valueBytes + scales) / 16) * 16;
  }
  /** Bytes of one block: every layer's K and V. */
  private get blockBytes(): number {
    return 2 * this.options.numLayers * this.options.numKvHeads * this.headBytes;
  }
  /** Byte offset of (layer, K = 0 | V = 1, head) inside a block. */
  private headAt(layer: number, kv: 0 | 1, head: number): number {
    return ((layer * 2 + kv) * this.options.numKvHeads + head) * this.headBytes;
  }

  private retain(block: number): number {
    this.refs.set(block, (this.refs.get(block) ?? 0) + 1);
    return block;
  }
  private release(block: number): void {
    const n = this.refs.get(block)! - 1;
    if (n > 0) this.refs.set(block, n);
    else {
      this.refs.delete(block);
      this.heap.free(block);
    }
  }

  /** Positions every row's blocks hold. */
  get capacity(): number {
    return (this.rows[0]?.length ?? 0) * this.blockSize;
  }
  /** Blocks the rows hold, each counted once however many rows share it. */
  get blocks(): number {
    return new Set(this.rows.flat()).size;
  }
  /** Blocks held by more than one row (or another storage: a fork). */
  get sharedBlocks(): number {
    return [...new Set(this.rows.flat())].filter((b) => this.refs.get(b)! > 1).length;
  }
  /** The heap bytes of this storage's blocks (outside any tensor, so not in `tf.memory()`); a shared block once. */
  get hostBytes(): number {
    return this.blocks * this.blockBytes;
  }
  get bytes(): number {
    return this.hostBytes;
  }

  reserve(needed: number): void {
    const blocks = Math.ceil(Math.min(needed, this.options.maxLength) / this.blockSize);
    for (const table of this.rows) while (table.length < blocks) table.push(this.retain(this.heap.malloc(this.blockBytes)));
  }

  /** Before positions [start, start + n) are written: every row owns the blocks they fall in (copy on write). */
  private ownBlocks(start: number, n: number): void {
    const first = start >> this.shift;
    const last = (start + n - 1) >> this.shift;
    for (const table of this.rows)
      for (let i = first; i <= last && i < table.length; i++) {
        const block = table[i]!;
        if (this.refs.get(block)! === 1) continue;
        const copy = this.retain(this.heap.malloc(this.blockBytes));
        this.heap.u8.copyWithin(copy, block, block + this.blockBytes);
        this.bytesWritten += this.blockBytes;
        this.release(block);
        table[i] = copy;
      }
  }

  /**
   * Writes `layer`'s block tables into the heap's scratch (before layer 0 writes `n` positions, shared blocks they
   * fall in are copied), with `extraBytes` more scratch after them, for a kernel that writes this storage directly.
   */
  tables(layer: number, at: WriteContext, n: number, extraBytes: number): LayerTables {
    if (layer === 0 && n > 0) this.ownBlocks(at.start, n);
    // the kernel writes this layer's n new K and V positions of every row (values and, for int8, scales)
    this.bytesWritten += 2 * this.rows.length * this.options.numKvHeads * n * (this.options.headDim * this.valueBytes + (this.options.kvDtype === 'int8' ? 4 : 0));
    const b = this.rows.length;
    const nb = this.rows[0]?.length ?? 0;
    const tableBytes = Math.ceil(((2 * b * nb + b) * 4) / 16) * 16;
    const base = this.heap.scratch(tableBytes + extraBytes);
    const i32 = this.heap.i32;
    const [kAt, vAt] = [this.headAt(layer, 0, 0), this.headAt(layer, 1, 0)];
    this.rows.forEach((table, r) => {
      table.forEach((block, i) => {
        i32[base / 4 + r * nb + i] = block + kAt;
        i32[base / 4 + b * nb + r * nb + i] = block + vAt;
      });
      i32[base / 4 + 2 * b * nb + r] = at.padding[r]!;
    });
    return { kTabs: base, vTabs: base + 4 * b * nb, pads: base + 8 * b * nb, blocksPerRow: nb, free: base + tableBytes };
  }

  attend(layer: number, q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, at: WriteContext): tf.Tensor4D {
    return runCacheAttend(q, k, v, { storage: this, layer, at });
  }

  /** Tables only: rows share blocks, nothing is copied (a later write into a shared block copies that block). */
  reorder(indices: readonly number[]): void {
    const next = indices.map((i) => this.rows[i]!.map((b) => this.retain(b)));
    this.rows.flat().forEach((b) => this.release(b));
    this.rows = next;
  }

  truncate(length: number): void {
    const keep = Math.ceil(length / this.blockSize);
    for (const table of this.rows) table.splice(keep).forEach((b) => this.release(b));
  }

  async read(layer: number, length: number): Promise<{ k: Float32Array; v: Float32Array }> {
    const { numKvHeads: kvh, headDim: hd } = this.options;
    const [k, v] = [new Float32Array(this.rows.length * kvh * length * hd), new Float32Array(this.rows.length * kvh * length * hd)];
    const buffer = this.heap.u8.buffer;
    this.rows.forEach((table, r) =>
      [k, v].forEach((out, kv) => {
        for (let h = 0; h < kvh; h++)
          for (let p = 0; p < length; p++) {
            const head = table[p >> this.shift]! + this.headAt(layer, kv as 0 | 1, h);
            const slot = p & (this.blockSize - 1);
            const o = ((r * kvh + h) * length + p) * hd;
            if (this.options.kvDtype === 'fp16') {
              const halves = new Uint16Array(buffer, head + slot * hd * 2, hd);
              for (let i = 0; i < hd; i++) out[o + i] = halfToFloat(halves[i]!);
            } else if (this.options.kvDtype === 'int8') {
              const q = new Int8Array(buffer, head + slot * hd, hd);
              const scale = new Float32Array(buffer, head + this.blockSize * hd, this.blockSize)[slot]!;
              for (let i = 0; i < hd; i++) out[o + i] = Math.fround(scale * q[i]!);
            } else out.set(new Float32Array(buffer, head + slot * hd * 4, hd), o);
          }
      }),
    );
    return { k, v };
  }

  /** A copy that shares every block (copy on write): O(blocks), no K/V copied. */
  fork(): WasmStorage {
    return new WasmStorage(this.options, this.rows.length, this.rows);
  }

  dispose(): void {
    this.rows.flat().forEach((b) => this.release(b));
    this.rows = [];
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
