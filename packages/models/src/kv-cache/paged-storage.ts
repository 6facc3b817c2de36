import type * as tf from '@tensorflow/tfjs-core';
import { UnsupportedError } from '@kvt/core';
import type { KVCacheOptions, KVStorage, WriteContext } from '@kvt/kernels';
import { halfToFloat } from '../weights/quantize.js';
import { int8KVScale } from './kv-dtype.js';

/**
 * Where a paged storage's blocks live, as byte ranges named by a number: the wasm backend's heap (a block is its heap
 * offset), the CPU backend's host memory. The storage does the bookkeeping; the memory and its backend's kernels
 * hold and move the bytes.
 */
export interface BlockMemory {
  /** A new block of `bytes` (16-byte aligned); never 0. */
  malloc(bytes: number): number;
  free(block: number): void;
  /** Copies `bytes` from block `src` to block `dst`. */
  copy(dst: number, src: number, bytes: number): void;
  /** Where block `block`'s bytes are: a buffer and the block's first byte in it (valid until the next malloc). */
  view(block: number): { readonly buffer: ArrayBufferLike; readonly byteOffset: number };
  /**
   * An int8 cache's fp16 block → int8 block: the first `filled` positions of each of `regions` head regions
   * (`openStride` bytes apart in `open`, `stride` apart in `sealed`), by the rule of a direct int8 write.
   */
  seal(open: number, sealed: number, regions: number, filled: number, headDim: number, shift: number, stride: number, openStride: number): void;
}

/** Reference counts of blocks (and int8 caches' key offsets), per memory: forks and reordered rows share blocks across storages. */
const blockRefs = new WeakMap<BlockMemory, Map<number, number>>();
/** The int8 blocks of int8 caches, per memory (the rest of their blocks are fp16). */
const int8Blocks = new WeakMap<BlockMemory, Set<number>>();

function perMemory<T>(map: WeakMap<BlockMemory, T>, memory: BlockMemory, make: () => T): T {
  let value = map.get(memory);
  if (!value) map.set(memory, (value = make()));
  return value;
}

/** What a fork takes over besides the tables: how many blocks are int8, and the key offsets. */
export interface PagedState {
  readonly sealed: number;
  readonly keyOffsets: number;
}

/**
 * K/V storage in paged blocks, for backends whose kernels read blocks from a {@link BlockMemory} (wasm, cpu). Blocks
 * of `blockSize` positions, each one allocation holding every layer's `[K|V, kvHeads, block, headDim]` of float32,
 * fp16 or int8 values (`kvDtype`); each row is a table of blocks. Blocks are reference-counted: a beam reorder or a
 * fork copies tables, never K/V, and rows share the prompt's blocks; a row that writes into a block it shares copies
 * that one block first (copy on write). Subclasses run their backend's kernels over the blocks.
 *
 * int8 (decision 0011): a row's blocks before `sealed` are int8 (each head region: the positions' int8 values, then a
 * scale byte per position), the rest fp16; a write that reaches a later block seals the ones before it (a new int8
 * block each). Keys are stored less a per-(layer, head) offset, fp16: the cache's first key (softmax cancels it).
 *
 * @example
 * ```ts
 * // the CPU backend's cache is one: a reorder builds block tables, and rows share blocks
 * import { HostKVCache } from '@kvt/backend-cpu';
 * const cache = new HostKVCache({ numLayers: 2, batchSize: 2, numKvHeads: 2, headDim: 8, maxLength: 64, kvDtype: 'int8' });
 * cache.reorder([0, 0]);
 * cache.dispose();
 * ```
 */
export abstract class PagedKVStorage implements KVStorage {
  private readonly refs: Map<number, number>;
  private readonly int8Set: Set<number>;
  /** Each row's blocks. */
  protected rows: number[][];
  /** K/V bytes written (see `Cache.bytesWritten`): new rows, blocks copied on write, positions sealed. */
  bytesWritten = 0;
  protected readonly shift: number;
  /** {@link headBytes} of the storage's type, and of an int8 cache's fp16 block. */
  private readonly sealedHeadBytes: number;
  private readonly openHeadBytes: number;
  /** int8: blocks before this (in every row) are int8, the rest fp16. */
  protected sealed: number;
  /** int8: the key offsets μ, fp16 [layers, kvHeads, hd] (a block, shared by forks; 0 until the first write). */
  protected keyOffsets: number;
  /** int8: the position (within the write now running) the key offsets are set from; −1: they are set. */
  protected offsetsFrom = -1;

  constructor(
    protected readonly options: KVCacheOptions,
    protected readonly memory: BlockMemory,
    /** Positions per block (a power of two). */
    readonly blockSize: number,
    rows = options.batchSize,
    tables?: number[][],
    from?: PagedState,
  ) {
    if (options.kvDtype !== undefined && options.kvDtype !== 'fp32' && options.headDim % 4 !== 0)
      throw new UnsupportedError(`This KV cache stores ${options.kvDtype} K/V for head sizes that are a multiple of 4 (this model's is ${options.headDim}); use kvDtype: 'fp32'.`);
    this.shift = Math.log2(blockSize);
    const regionBytes = (valueBytes: number, scales: number) => Math.ceil((blockSize * options.headDim * valueBytes + scales) / 16) * 16;
    this.sealedHeadBytes = regionBytes(this.valueBytes, this.int8 ? blockSize : 0);
    this.openHeadBytes = regionBytes(2, 0);
    this.refs = perMemory(blockRefs, memory, () => new Map());
    this.int8Set = perMemory(int8Blocks, memory, () => new Set());
    this.rows = tables ? tables.map((t) => t.map((b) => this.retain(b))) : Array.from({ length: rows }, () => []);
    this.sealed = from?.sealed ?? 0;
    this.keyOffsets = from?.keyOffsets ? this.retain(from.keyOffsets) : 0;
    // int8 blocks are allocated as they are written (a block reserved ahead would be fp16 until sealed)
    const hint = Math.min(options.maxLength, options.capacityHint ?? 0);
    if (!tables && hint > 0 && !this.int8) this.reserve(hint);
  }

  abstract attend(layer: number, q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, at: WriteContext): tf.Tensor4D;
  /** A copy that shares every block (copy on write): O(blocks), no K/V copied; see {@link forkState}. */
  abstract fork(): PagedKVStorage;

  /** What a fork passes to its constructor: the tables and {@link PagedState}. */
  protected forkState(): [number[][], PagedState] {
    return [this.rows, { sealed: this.sealed, keyOffsets: this.keyOffsets }];
  }

  protected get int8(): boolean {
    return this.options.kvDtype === 'int8';
  }
  /** Bytes of one stored value (fp32, fp16, int8). */
  protected get valueBytes(): number {
    return { fp32: 4, fp16: 2, int8: 1 }[this.options.kvDtype ?? 'fp32'];
  }
  /**
   * Bytes of one head's region in a block: blockSize × headDim values, then (int8) blockSize scale bytes; 16-aligned.
   * `open`: an int8 cache's fp16 block (the one being filled).
   */
  headBytes(open = false): number {
    return open ? this.openHeadBytes : this.sealedHeadBytes;
  }
  /** Bytes of one block: every layer's K and V. */
  protected blockBytes(open = false): number {
    return 2 * this.options.numLayers * this.options.numKvHeads * this.headBytes(open);
  }
  /** Whether the block at index i of a row is an int8 cache's fp16 block. */
  protected isOpen(i: number): boolean {
    return this.int8 && i >= this.sealed;
  }
  /** Byte offset of (layer, K = 0 | V = 1, head) inside a block. */
  protected headAt(layer: number, kv: 0 | 1, head: number, open = false): number {
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
      this.memory.free(block);
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
  /** The bytes of this storage's blocks (outside any tensor, so not in `tf.memory()`); a shared block once. */
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
        const block = this.retain(this.memory.malloc(this.blockBytes(open)));
        if (this.int8 && !open) this.int8Set.add(block);
        table.push(block);
      }
  }

  /**
   * Before layer 0 writes positions [start, start + n): an int8 cache seals the blocks the write passes, and every
   * row owns the blocks the positions fall in (copy on write).
   */
  protected prepareBlocks(at: WriteContext, n: number): void {
    if (this.int8) this.seal(at.start, n, at.padding);
    this.ownBlocks(at.start, n);
  }

  private ownBlocks(start: number, n: number): void {
    const first = start >> this.shift;
    const last = (start + n - 1) >> this.shift;
    for (const table of this.rows)
      for (let i = first; i <= last && i < table.length; i++) {
        const block = table[i]!;
        if (this.refs.get(block)! === 1) continue;
        const bytes = this.blockBytes(this.isOpen(i));
        const copy = this.retain(this.memory.malloc(bytes));
        if (this.int8Set.has(block)) this.int8Set.add(copy);
        this.memory.copy(copy, block, bytes);
        this.bytesWritten += bytes;
        this.release(block);
        table[i] = copy;
      }
  }

  /**
   * int8: the fp16 blocks before the one holding the write's last position become int8 (a new block each, shared
   * where the fp16 one was; its positions before `start` converted), and the first write sets where the key offsets
   * come from (row 0's first unpadded position).
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
          sealed = this.memory.malloc(this.blockBytes());
          this.int8Set.add(sealed);
          const filled = Math.max(0, Math.min(this.blockSize, start - i * this.blockSize));
          const regions = 2 * this.options.numLayers * this.options.numKvHeads;
          this.memory.seal(open, sealed, regions, filled, this.options.headDim, this.shift, head, openHead);
          this.bytesWritten += regions * filled * (this.options.headDim + 1);
          sealedCopy.set(open, sealed);
        }
        table[i] = this.retain(sealed);
        this.release(open);
      }
    this.sealed = Math.max(this.sealed, target);
    this.offsetsFrom = -1;
    if (!this.keyOffsets) {
      this.keyOffsets = this.retain(this.memory.malloc(this.offsetsBytes));
      this.offsetsFrom = Math.min(padding[0] ?? 0, n - 1);
    }
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
    return this.gather(layer, length);
  }

  /**
   * K and V of `layer` at positions [0, length) of every row as float32 `[rows, kvHeads, length, headDim]`, dequantized
   * (int8 keys with their offsets added back).
   */
  protected gather(layer: number, length: number): { k: Float32Array; v: Float32Array } {
    const { numKvHeads: kvh, headDim: hd } = this.options;
    const [k, v] = [new Float32Array(this.rows.length * kvh * length * hd), new Float32Array(this.rows.length * kvh * length * hd)];
    const offsets = this.keyOffsets ? this.memory.view(this.keyOffsets) : undefined;
    const mu = offsets ? new Uint16Array(offsets.buffer, offsets.byteOffset + layer * kvh * hd * 2, kvh * hd) : undefined;
    this.rows.forEach((table, r) =>
      [k, v].forEach((out, kv) => {
        for (let h = 0; h < kvh; h++)
          for (let p = 0; p < length; p++) {
            const open = this.isOpen(p >> this.shift);
            const { buffer, byteOffset } = this.memory.view(table[p >> this.shift]!);
            const head = byteOffset + this.headAt(layer, kv as 0 | 1, h, open);
            const slot = p & (this.blockSize - 1);
            const o = ((r * kvh + h) * length + p) * hd;
            if (this.options.kvDtype === 'fp16' || open) {
              const halves = new Uint16Array(buffer, head + slot * hd * 2, hd);
              for (let i = 0; i < hd; i++) out[o + i] = halfToFloat(halves[i]!);
            } else if (this.int8) {
              const q = new Int8Array(buffer, head + slot * hd, hd);
              const scale = int8KVScale(new Uint8Array(buffer, head + this.blockSize * hd + slot, 1)[0]!);
              for (let i = 0; i < hd; i++) out[o + i] = Math.fround(scale * q[i]!);
            } else out.set(new Float32Array(buffer, head + slot * hd * 4, hd), o);
            if (mu && kv === 0) for (let i = 0; i < hd; i++) out[o + i] = Math.fround(out[o + i]! + halfToFloat(mu[h * hd + i]!));
          }
      }),
    );
    return { k, v };
  }

  dispose(): void {
    this.rows.flat().forEach((b) => this.release(b));
    this.rows = [];
    if (this.keyOffsets) this.release(this.keyOffsets);
    this.keyOffsets = 0;
  }
}
