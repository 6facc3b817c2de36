import * as tf from '@tensorflow/tfjs-core';
import { KVCacheContainer, KvtCacheAttend, KvtLlamaBlock, runCacheAttend, type KVCacheOptions, type KVStorage, type WriteContext } from '@kvt/kernels';
import { UnsupportedError } from '@kvt/core';
import { halfToFloat, INT8_KV_BLOCK_SIZE, int8KVScale } from '@kvt/models';
import { heapOf, type WasmHeap } from './heap.js';

/** Where a kernel finds one layer's storage: block tables in the heap's scratch, then free scratch floats. */
export interface LayerTables {
  /** Int32 [rows, blocksPerRow]: this layer's K region of each row's blocks; then the same for V; then [rows] left padding. */
  readonly kTabs: number;
  readonly vTabs: number;
  readonly pads: number;
  readonly blocksPerRow: number;
  /** kvt-kernels.c's KvLayout of this layer: the K/V format, head strides, int8 blocks and key offsets. */
  readonly layout: number;
  /** First byte of scratch after the tables (16-byte aligned). */
  readonly free: number;
}

/**
 * Positions per K/V block for a cache of `options`: 64 where a position's head row is 256 bytes or more (the 110M
 * shape: attention then reads each head in 16 KB runs, which the hardware prefetcher follows; measured, decision
 * 0011), else 16 (small heads: finer sharing, and attention is a small part of a step). int8 caches: 16
 * ({@link INT8_KV_BLOCK_SIZE}: the block being filled is kept as fp16).
 *
 * @example
 * ```ts
 * kvBlockSize({ numLayers: 12, batchSize: 1, numKvHeads: 12, headDim: 64, maxLength: 1024 }); // 64
 * ```
 */
export function kvBlockSize(options: KVCacheOptions): number {
  if (options.kvDtype === 'int8') return INT8_KV_BLOCK_SIZE;
  const valueBytes = { fp32: 4, fp16: 2, int8: 1 }[options.kvDtype ?? 'fp32'];
  return options.headDim * valueBytes >= 256 ? 64 : 16;
}

/** Bytes of kvt-kernels.c's KvLayout (six int32). */
const LAYOUT_BYTES = 24;

/** Reference counts of K/V blocks (and int8 caches' key offsets), per heap: forks and reordered rows share blocks across storages. */
const blockRefs = new WeakMap<WasmHeap, Map<number, number>>();
/** The int8 blocks of int8 caches, per heap (the rest of their blocks are fp16). */
const int8Blocks = new WeakMap<WasmHeap, Set<number>>();

/**
 * The WASM backend's K/V storage, paged: K and V live in tfjs-wasm's own heap, where the kernels that write and read
 * them (kvt-kernels.c) run, so a decode step moves no K/V bytes through JavaScript. Blocks of {@link kvBlockSize}
 * positions, each one allocation holding every layer's `[K|V, kvHeads, block, headDim]` of float32, fp16 or int8
 * values (`kvDtype`); each row is a table of blocks. Blocks are reference-counted: a beam reorder or a fork copies
 * tables, never K/V, and rows share the prompt's blocks; a row that writes into a block it shares copies that one
 * block first (copy on write).
 *
 * int8 (kvt-kernels.c, decision 0011): a row's blocks before `sealed` are int8 (each head region: the positions'
 * int8 values, then a scale byte per position), the rest fp16; a write that reaches a later block seals the ones
 * before it (a new int8 block each). Keys are stored less a per-(layer, head) offset: the cache's first key.
 */
export class WasmStorage implements KVStorage {
  readonly kernels: ReadonlySet<string> = new Set([KvtLlamaBlock, KvtCacheAttend]);
  private readonly heap: WasmHeap;
  private readonly refs: Map<number, number>;
  private readonly int8Set: Set<number>;
  /** Each row's blocks (heap offsets). */
  private rows: number[][];
  /** K/V bytes written (see `Cache.bytesWritten`): new rows, and blocks copied on write. */
  bytesWritten = 0;
  /** Positions per block (a power of two) and its log2. */
  readonly blockSize: number;
  private readonly shift: number;
  /** int8: blocks before this (in every row) are int8, the rest fp16. */
  private sealed: number;
  /** int8: the key offsets μ, fp16 [layers, kvHeads, hd] (a heap block, shared by forks; 0 until the first write). */
  private keyOffsets: number;
  /** int8: the position (within the write) the write now running sets the key offsets from; −1: they are set. */
  private offsetsFrom = -1;

  constructor(
    private readonly options: KVCacheOptions,
    rows = options.batchSize,
    tables?: number[][],
    from?: { sealed: number; keyOffsets: number },
  ) {
    if (options.kvDtype !== undefined && options.kvDtype !== 'fp32' && options.headDim % 4 !== 0)
      throw new UnsupportedError(`The wasm KV cache stores ${options.kvDtype} K/V for head sizes that are a multiple of 4 (this model's is ${options.headDim}); use kvDtype: 'fp32'.`);
    this.heap = heapOf(tf.backend());
    this.blockSize = kvBlockSize(options);
    this.shift = Math.log2(this.blockSize);
    let refs = blockRefs.get(this.heap);
    if (!refs) blockRefs.set(this.heap, (refs = new Map()));
    this.refs = refs;
    let int8Set = int8Blocks.get(this.heap);
    if (!int8Set) int8Blocks.set(this.heap, (int8Set = new Set()));
    this.int8Set = int8Set;
    this.rows = tables ? tables.map((t) => t.map((b) => this.retain(b))) : Array.from({ length: rows }, () => []);
    this.sealed = from?.sealed ?? 0;
    this.keyOffsets = from?.keyOffsets ? this.retain(from.keyOffsets) : 0;
    // int8 blocks are allocated as they are written (a block reserved ahead would be fp16 until sealed)
    const hint = Math.min(options.maxLength, options.capacityHint ?? 0);
    if (!tables && hint > 0 && !this.int8) this.reserve(hint);
  }

  private get int8(): boolean {
    return this.options.kvDtype === 'int8';
  }

  /** Bytes of one stored value (fp32, fp16, int8). */
  private get valueBytes(): number {
    return { fp32: 4, fp16: 2, int8: 1 }[this.options.kvDtype ?? 'fp32'];
  }
  /** The kernels' K/V format code: the stored type (kvt-kernels.c's KV_*) | the block's log2 size << 8. */
  get formatCode(): number {
    return { fp32: 0, fp16: 1, int8: 2 }[this.options.kvDtype ?? 'fp32'] | (this.shift << 8);
  }
  /**
   * Bytes of one head's region in a block: blockSize × headDim values, then (int8) blockSize scale bytes; 16-aligned.
   * `open`: an int8 cache's fp16 block (the one being filled).
   */
  headBytes(open = false): number {
    const [valueBytes, scales] = open ? [2, 0] : [this.valueBytes, this.int8 ? this.blockSize : 0];
    return Math.ceil((this.blockSize * this.options.headDim * valueBytes + scales) / 16) * 16;
  }
  /** Bytes of one block: every layer's K and V. */
  private blockBytes(open = false): number {
    return 2 * this.options.numLayers * this.options.numKvHeads * this.headBytes(open);
  }
  /** Whether the block at index i of a row is an int8 cache's fp16 block. */
  private isOpen(i: number): boolean {
    return this.int8 && i >= this.sealed;
  }
  /** Byte offset of (layer, K = 0 | V = 1, head) inside a block. */
  private headAt(layer: number, kv: 0 | 1, head: number, open = false): number {
    return ((layer * 2 + kv) * this.options.numKvHeads + head) * this.headBytes(open);
  }
  /** Bytes of an int8 cache's key offsets. */
  private get offsetsBytes(): number {
    return Math.ceil((this.options.numLayers * this.options.numKvHeads * this.options.headDim * 2) / 16) * 16;
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
      this.int8Set.delete(block);
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
    const seen = new Set<number>();
    let bytes = this.keyOffsets ? this.offsetsBytes : 0;
    for (const table of this.rows)
      table.forEach((block, i) => {
        if (!seen.has(block)) bytes += this.blockBytes(this.isOpen(i));
        seen.add(block);
      });
    return bytes;
  }
  get bytes(): number {
    return this.hostBytes;
  }

  /**
   * Room for `needed` positions per row, in whole blocks. int8: a new block that the write to `needed` fills is
   * allocated int8 (it is sealed by that write), the last one fp16.
   */
  reserve(needed: number): void {
    const blocks = Math.ceil(Math.min(needed, this.options.maxLength) / this.blockSize);
    const int8Below = this.int8 ? Math.max(this.sealed, (needed - 1) >> this.shift) : 0;
    for (const table of this.rows)
      while (table.length < blocks) {
        const open = this.int8 && table.length >= int8Below;
        const block = this.retain(this.heap.malloc(this.blockBytes(open)));
        if (this.int8 && !open) this.int8Set.add(block);
        table.push(block);
      }
  }

  /** Before positions [start, start + n) are written: every row owns the blocks they fall in (copy on write). */
  private ownBlocks(start: number, n: number): void {
    const first = start >> this.shift;
    const last = (start + n - 1) >> this.shift;
    for (const table of this.rows)
      for (let i = first; i <= last && i < table.length; i++) {
        const block = table[i]!;
        if (this.refs.get(block)! === 1) continue;
        const bytes = this.blockBytes(this.isOpen(i));
        const copy = this.retain(this.heap.malloc(bytes));
        if (this.int8Set.has(block)) this.int8Set.add(copy);
        this.heap.u8.copyWithin(copy, block, block + bytes);
        this.bytesWritten += bytes;
        this.release(block);
        table[i] = copy;
      }
  }

  /**
   * int8, before positions [start, start + n) are written: the fp16 blocks before the one holding the last of them
   * become int8 (a new block each, shared where the fp16 one was; its `start` − first positions converted), and the
   * first write sets where the key offsets come from.
   */
  private seal(start: number, n: number, padding: readonly number[]): void {
    const target = (start + n - 1) >> this.shift;
    const sealedCopy = new Map<number, number>();
    const [openHead, head] = [this.headBytes(true), this.headBytes()];
    for (const table of this.rows)
      for (let i = this.sealed; i < target && i < table.length; i++) {
        const open = table[i]!;
        if (this.int8Set.has(open)) continue; // reserved as int8 for this write
        let sealed = sealedCopy.get(open);
        if (sealed === undefined) {
          sealed = this.heap.malloc(this.blockBytes());
          this.int8Set.add(sealed);
          const filled = Math.max(0, Math.min(this.blockSize, start - i * this.blockSize));
          const regions = 2 * this.options.numLayers * this.options.numKvHeads;
          this.heap.kernels.kv_seal(open, sealed, regions, filled, this.options.headDim, this.shift, head, openHead);
          this.bytesWritten += regions * filled * (this.options.headDim + 1);
          sealedCopy.set(open, sealed);
        }
        table[i] = this.retain(sealed);
        this.release(open);
      }
    this.sealed = Math.max(this.sealed, target);
    this.offsetsFrom = -1;
    if (!this.keyOffsets) {
      this.keyOffsets = this.retain(this.heap.malloc(this.offsetsBytes));
      this.offsetsFrom = Math.min(padding[0] ?? 0, n - 1);
    }
  }

  /**
   * Writes `layer`'s block tables into the heap's scratch (before layer 0 writes `n` positions, shared blocks they
   * fall in are copied), with `extraBytes` more scratch after them, for a kernel that writes this storage directly.
   */
  tables(layer: number, at: WriteContext, n: number, extraBytes: number): LayerTables {
    if (layer === 0 && n > 0) {
      if (this.int8) this.seal(at.start, n, at.padding);
      this.ownBlocks(at.start, n);
    }
    // the kernel writes this layer's n new K and V positions of every row (values and, for int8, scales)
    this.bytesWritten += 2 * this.rows.length * this.options.numKvHeads * n * this.options.headDim * this.valueBytes;
    const b = this.rows.length;
    const nb = this.rows[0]?.length ?? 0;
    const tableBytes = Math.ceil(((2 * b * nb + b) * 4 + LAYOUT_BYTES) / 16) * 16;
    const base = this.heap.scratch(tableBytes + extraBytes);
    const i32 = this.heap.i32;
    this.rows.forEach((table, r) => {
      table.forEach((block, i) => {
        const open = this.isOpen(i);
        i32[base / 4 + r * nb + i] = block + this.headAt(layer, 0, 0, open);
        i32[base / 4 + b * nb + r * nb + i] = block + this.headAt(layer, 1, 0, open);
      });
      i32[base / 4 + 2 * b * nb + r] = at.padding[r]!;
    });
    // KvLayout: format, stride, sealed, openStride, keyOffsets, offsetsFrom
    const layout = base + (2 * b * nb + b) * 4;
    const offsets = this.keyOffsets ? this.keyOffsets + layer * this.options.numKvHeads * this.options.headDim * 2 : 0;
    i32.set([this.formatCode, this.headBytes(), this.sealed, this.headBytes(true), offsets, this.offsetsFrom], layout / 4);
    return { kTabs: base, vTabs: base + 4 * b * nb, pads: base + 8 * b * nb, blocksPerRow: nb, layout, free: base + tableBytes };
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
    this.sealed = Math.min(this.sealed, keep);
    if (length === 0 && this.keyOffsets) {
      this.release(this.keyOffsets);
      this.keyOffsets = 0;
    }
  }

  async read(layer: number, length: number): Promise<{ k: Float32Array; v: Float32Array }> {
    const { numKvHeads: kvh, headDim: hd } = this.options;
    const [k, v] = [new Float32Array(this.rows.length * kvh * length * hd), new Float32Array(this.rows.length * kvh * length * hd)];
    const buffer = this.heap.u8.buffer;
    const u8 = this.heap.u8;
    // int8: keys were stored less the offsets
    const mu = this.keyOffsets ? new Uint16Array(buffer, this.keyOffsets + layer * kvh * hd * 2, kvh * hd) : undefined;
    this.rows.forEach((table, r) =>
      [k, v].forEach((out, kv) => {
        for (let h = 0; h < kvh; h++)
          for (let p = 0; p < length; p++) {
            const open = this.isOpen(p >> this.shift);
            const head = table[p >> this.shift]! + this.headAt(layer, kv as 0 | 1, h, open);
            const slot = p & (this.blockSize - 1);
            const o = ((r * kvh + h) * length + p) * hd;
            if (this.options.kvDtype === 'fp16' || open) {
              const halves = new Uint16Array(buffer, head + slot * hd * 2, hd);
              for (let i = 0; i < hd; i++) out[o + i] = halfToFloat(halves[i]!);
            } else if (this.int8) {
              const q = new Int8Array(buffer, head + slot * hd, hd);
              const scale = int8KVScale(u8[head + this.blockSize * hd + slot]!);
              for (let i = 0; i < hd; i++) out[o + i] = Math.fround(scale * q[i]!);
            } else out.set(new Float32Array(buffer, head + slot * hd * 4, hd), o);
            if (mu && kv === 0) for (let i = 0; i < hd; i++) out[o + i] = Math.fround(out[o + i]! + halfToFloat(mu[h * hd + i]!));
          }
      }),
    );
    return { k, v };
  }

  /** A copy that shares every block (copy on write): O(blocks), no K/V copied. */
  fork(): WasmStorage {
    return new WasmStorage(this.options, this.rows.length, this.rows, { sealed: this.sealed, keyOffsets: this.keyOffsets });
  }

  dispose(): void {
    this.rows.flat().forEach((b) => this.release(b));
    this.rows = [];
    if (this.keyOffsets) this.release(this.keyOffsets);
    this.keyOffsets = 0;
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
