import * as tf from '@tensorflow/tfjs-core';
import { KVCacheContainer, KvtCacheAttend, KvtLlamaBlock, runCacheAttend, type KVCacheOptions, type WriteContext } from '@kvt/kernels';
import { INT8_KV_BLOCK_SIZE, PagedKVStorage, type BlockMemory, type PagedState } from '@kvt/models';
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

/** Bytes of kvt-kernels.c's KvLayout (six int32). */
const LAYOUT_BYTES = 24;

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

/** tfjs-wasm's heap as the blocks' memory: a block is a heap offset; kvt-kernels.c seals int8 blocks. */
const blockMemories = new WeakMap<WasmHeap, BlockMemory>();
function blockMemory(heap: WasmHeap): BlockMemory {
  let memory = blockMemories.get(heap);
  if (!memory)
    blockMemories.set(
      heap,
      (memory = {
        malloc: (bytes) => heap.malloc(bytes),
        free: (block) => heap.free(block),
        copy: (dst, src, bytes) => heap.u8.copyWithin(dst, src, src + bytes),
        view: (block) => ({ buffer: heap.u8.buffer, byteOffset: block }),
        seal: (...args) => heap.kernels.kv_seal(...args),
      }),
    );
  return memory;
}

/**
 * The WASM backend's K/V storage: {@link PagedKVStorage} blocks in tfjs-wasm's own heap, where the kernels that write
 * and read them (kvt-kernels.c) run, so a decode step moves no K/V bytes through JavaScript. The kernels take, per
 * layer, block tables of pointers to that layer's region of each block ({@link tables}).
 */
export class WasmStorage extends PagedKVStorage {
  readonly kernels: ReadonlySet<string> = new Set([KvtLlamaBlock, KvtCacheAttend]);
  private readonly heap: WasmHeap;

  constructor(options: KVCacheOptions, rows = options.batchSize, tables?: number[][], from?: PagedState) {
    const heap = heapOf(tf.backend());
    super(options, blockMemory(heap), kvBlockSize(options), rows, tables, from);
    this.heap = heap;
  }

  /** The kernels' K/V format code: the stored type (kvt-kernels.c's KV_*) | the block's log2 size << 8. */
  get formatCode(): number {
    return { fp32: 0, fp16: 1, int8: 2 }[this.options.kvDtype ?? 'fp32'] | (this.shift << 8);
  }

  /**
   * Writes `layer`'s block tables and layout into the heap's scratch (before layer 0 writes `n` positions, the blocks
   * are prepared: sealed, copied on write), with `extraBytes` more scratch after them, for a kernel that writes this
   * storage directly.
   */
  tables(layer: number, at: WriteContext, n: number, extraBytes: number): LayerTables {
    if (layer === 0 && n > 0) this.prepareBlocks(at, n);
    // the kernel writes this layer's n new K and V positions of every row
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

  /** Writes k, v `[rows, kvHeads, n, hd]` at `at.start`, attending nothing. */
  append(layer: number, k: tf.Tensor4D, v: tf.Tensor4D, at: WriteContext): void {
    this.writeRows(this.tables(layer, at, k.shape[2], 0), k, v, at.start);
  }

  /** kvt-kernels.c's `cache_write` of k and v `[rows, kvHeads, n, hd]` (in the heap) at `start`, through tables `t`. */
  writeRows(t: LayerTables, k: tf.TensorInfo, v: tf.TensorInfo, start: number): void {
    const [b, KV, n, hd] = k.shape as [number, number, number, number];
    this.heap.kernels.cache_write(this.heap.offset(k), KV * n * hd, n * hd, hd, t.kTabs, b, n, KV, hd, t.blocksPerRow, start, t.layout, 1);
    this.heap.kernels.cache_write(this.heap.offset(v), KV * n * hd, n * hd, hd, t.vTabs, b, n, KV, hd, t.blocksPerRow, start, t.layout, 0);
  }

  fork(): WasmStorage {
    return new WasmStorage(this.options, this.rows.length, ...this.forkState());
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
