import * as tf from '@tensorflow/tfjs-core';
import { KVCacheContainer, type KVCacheOptions, type WriteContext } from '@kvt/kernels';
import { floatToHalf, halfToFloat, int8KVQuantize, int8KVScale, PagedKVStorage, toHalf, type BlockMemory, type PagedState } from '@kvt/models';

/** Positions per block: 16 (fine-grained sharing; the loops below take a block at a time). */
const BLOCK_SIZE = 16;

/** One block's bytes, with the views the kernels read them through. */
interface HostBlock {
  readonly u8: Uint8Array;
  readonly i8: Int8Array;
  readonly u16: Uint16Array;
  readonly f32: Float32Array;
}

/** Every fp16 bit pattern as float32 (256 KiB, built on first use): the loops read fp16 K/V through it. */
let halfTable: Float32Array | undefined;
function halves(): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = halfToFloat(h);
  }
  return halfTable;
}

/**
 * Host memory for the CPU backend's blocks: each block its own ArrayBuffer, named by a number. Sealing an int8
 * cache's fp16 block quantizes each position as a direct int8 write does ({@link int8KVQuantize}).
 */
class HostBlocks implements BlockMemory {
  private readonly blocks = new Map<number, HostBlock>();
  private next = 1;

  get(block: number): HostBlock {
    return this.blocks.get(block)!;
  }
  malloc(bytes: number): number {
    const buffer = new ArrayBuffer(bytes);
    const id = this.next++;
    this.blocks.set(id, { u8: new Uint8Array(buffer), i8: new Int8Array(buffer), u16: new Uint16Array(buffer), f32: new Float32Array(buffer) });
    return id;
  }
  free(block: number): void {
    this.blocks.delete(block);
  }
  copy(dst: number, src: number, bytes: number): void {
    this.get(dst).u8.set(this.get(src).u8.subarray(0, bytes));
  }
  view(block: number): { buffer: ArrayBufferLike; byteOffset: number } {
    return { buffer: this.get(block).u8.buffer, byteOffset: 0 };
  }
  seal(open: number, sealed: number, regions: number, filled: number, hd: number, shift: number, stride: number, openStride: number): void {
    const [from, to] = [this.get(open), this.get(sealed)];
    const block = 1 << shift;
    const table = halves();
    const x = new Float32Array(hd);
    for (let g = 0; g < regions; g++)
      for (let s = 0; s < filled; s++) {
        const src = (g * openStride) / 2 + s * hd;
        for (let i = 0; i < hd; i++) x[i] = table[from.u16[src + i]!]!;
        const head = g * stride;
        to.u8[head + block * hd + s] = int8KVQuantize(x, to.i8.subarray(head + s * hd, head + (s + 1) * hd));
      }
  }
}

/** The CPU backend's block memory, one per process: caches and their forks share blocks through it. */
const hostBlocks = new HostBlocks();

/**
 * The CPU backend's K/V storage: {@link PagedKVStorage} blocks in host memory (float32, fp16, or int8 with the block
 * being filled as fp16), written in place. Attention runs loops over the row's blocks that read only the valid
 * positions `[padding[b], start + t]` of each new position t, dequantizing fp16 and int8 as they read: q·K, softmax,
 * Σ p·V; no copy of the cache, no tensor but the output. Prefills too: tfjs-cpu's softmax and masked add broadcast
 * element by element, 5–10 × slower than these loops (decision 0002). See docs/decisions/0002 and 0011.
 */
export class HostStorage extends PagedKVStorage {
  /** Scores of one (row, head, position), grown as needed. */
  private scores = new Float32Array(64);

  constructor(options: KVCacheOptions, rows = options.batchSize, tables?: number[][], from?: PagedState) {
    super(options, hostBlocks, BLOCK_SIZE, rows, tables, from);
  }

  attend(layer: number, q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, at: WriteContext): tf.Tensor4D {
    this.append(layer, k, v, at);
    const [b, H, n, hd] = q.shape;
    return tf.tensor4d(this.attention(layer, q.dataSync() as Float32Array, b, H, n, at), [b, H, n, hd]);
  }

  append(layer: number, k: tf.Tensor4D, v: tf.Tensor4D, at: WriteContext): void {
    const [b, , n, hd] = k.shape;
    if (layer === 0 && n > 0) this.prepareBlocks(at, n);
    this.write(layer, k.dataSync() as Float32Array, 0, b, n, at.start);
    this.write(layer, v.dataSync() as Float32Array, 1, b, n, at.start);
    this.bytesWritten += 2 * b * this.options.numKvHeads * n * hd * this.valueBytes;
  }

  /**
   * Stores K (kv 0) or V `[b, kvHeads, n, hd]` at positions start…: float32, fp16, or int8 (sealed blocks) and fp16
   * (the block being filled), keys of an int8 cache less the key offsets (set first by the cache's first write).
   */
  private write(layer: number, data: Float32Array, kv: 0 | 1, b: number, n: number, start: number): void {
    const { numKvHeads: kvh, headDim: hd } = this.options;
    const dtype = this.options.kvDtype ?? 'fp32';
    const mu = this.int8 && kv === 0 ? this.keyOffsetsOf(layer) : undefined;
    if (mu && this.offsetsFrom >= 0) for (let g = 0; g < kvh; g++) for (let i = 0; i < hd; i++) mu[g * hd + i] = floatToHalf(data[(g * n + this.offsetsFrom) * hd + i]!);
    const table = halves();
    const x = new Float32Array(hd);
    for (let r = 0; r < b; r++)
      for (let g = 0; g < kvh; g++)
        for (let t = 0; t < n; t++) {
          const j = start + t;
          const open = this.isOpen(j >> this.shift);
          const block = hostBlocks.get(this.rows[r]![j >> this.shift]!);
          const head = this.headAt(layer, kv, g, open);
          const slot = j & (this.blockSize - 1);
          const src = ((r * kvh + g) * n + t) * hd;
          if (dtype === 'fp32') block.f32.set(data.subarray(src, src + hd), head / 4 + slot * hd);
          else {
            for (let i = 0; i < hd; i++) x[i] = mu ? Math.fround(data[src + i]! - table[mu[g * hd + i]!]!) : data[src + i]!;
            if (dtype === 'fp16' || open) for (let i = 0; i < hd; i++) block.u16[head / 2 + slot * hd + i] = floatToHalf(x[i]!);
            else {
              for (let i = 0; i < hd; i++) x[i] = toHalf(x[i]!);
              block.u8[head + this.blockSize * hd + slot] = int8KVQuantize(x, block.i8.subarray(head + slot * hd, head + (slot + 1) * hd));
            }
          }
        }
  }

  /** An int8 cache's key offsets of `layer`, fp16 bits [kvHeads, hd]. */
  private keyOffsetsOf(layer: number): Uint16Array {
    const { numKvHeads: kvh, headDim: hd } = this.options;
    return hostBlocks.get(this.keyOffsets).u16.subarray(layer * kvh * hd, (layer + 1) * kvh * hd);
  }

  /** softmax(q · Kᵀ) · V over positions [padding[r], start + t] of each row, block by block; q is already scaled. */
  private attention(layer: number, qd: Float32Array, b: number, H: number, n: number, at: WriteContext): Float32Array {
    const { numKvHeads: kvh, headDim: hd } = this.options;
    const groups = H / kvh;
    const B = this.blockSize;
    const int8 = this.int8;
    const fp16 = this.options.kvDtype === 'fp16';
    const table = halves();
    if (this.scores.length < at.start + n) this.scores = new Float32Array(2 * (at.start + n));
    const scores = this.scores;
    const result = new Float32Array(b * H * n * hd); // [b, H, n, hd]
    for (let r = 0; r < b; r++) {
      const tab = this.rows[r]!;
      for (let h = 0; h < H; h++) {
        const g = Math.floor(h / groups);
        for (let t = 0; t < n; t++) {
          const qAt = ((r * H + h) * n + t) * hd;
          const [start, end] = [at.padding[r]!, at.start + t + 1];
          let max = -Infinity;
          for (let bi = start >> this.shift; bi <= (end - 1) >> this.shift; bi++) {
            const open = this.isOpen(bi);
            const block = hostBlocks.get(tab[bi]!);
            const head = this.headAt(layer, 0, g, open);
            for (let j = Math.max(start, bi * B); j < Math.min(end, (bi + 1) * B); j++) {
              const slot = j & (B - 1);
              let s = 0;
              if (fp16 || open) for (let i = 0, at16 = head / 2 + slot * hd; i < hd; i++) s += qd[qAt + i]! * table[block.u16[at16 + i]!]!;
              else if (int8) {
                for (let i = 0, at8 = head + slot * hd; i < hd; i++) s += qd[qAt + i]! * block.i8[at8 + i]!;
                s *= this.scaleOf(block, head, slot);
              } else for (let i = 0, at32 = head / 4 + slot * hd; i < hd; i++) s += qd[qAt + i]! * block.f32[at32 + i]!;
              scores[j] = s;
              if (s > max) max = s;
            }
          }
          let sum = 0;
          for (let j = start; j < end; j++) sum += scores[j] = Math.exp(scores[j]! - max);
          const o = result.subarray(qAt, qAt + hd);
          for (let bi = start >> this.shift; bi <= (end - 1) >> this.shift; bi++) {
            const open = this.isOpen(bi);
            const block = hostBlocks.get(tab[bi]!);
            const head = this.headAt(layer, 1, g, open);
            for (let j = Math.max(start, bi * B); j < Math.min(end, (bi + 1) * B); j++) {
              const slot = j & (B - 1);
              let p = scores[j]! / sum;
              if (fp16 || open) for (let i = 0, at16 = head / 2 + slot * hd; i < hd; i++) o[i] += p * table[block.u16[at16 + i]!]!;
              else if (int8) {
                p *= this.scaleOf(block, head, slot);
                for (let i = 0, at8 = head + slot * hd; i < hd; i++) o[i] += p * block.i8[at8 + i]!;
              } else for (let i = 0, at32 = head / 4 + slot * hd; i < hd; i++) o[i] += p * block.f32[at32 + i]!;
            }
          }
        }
      }
    }
    return result;
  }

  /** The scale of an int8 position: its scale byte after the head region's values. */
  private scaleOf(block: HostBlock, head: number, slot: number): number {
    return int8Scales[block.u8[head + this.blockSize * this.options.headDim + slot]!]!;
  }

  fork(): HostStorage {
    return new HostStorage(this.options, this.rows.length, ...this.forkState());
  }
}

/** Every int8 scale byte's scale. */
const int8Scales = Float32Array.from({ length: 256 }, (_, code) => int8KVScale(code));

/**
 * The CPU backend's KV cache: {@link HostStorage} in the shared container.
 *
 * @example
 * ```ts
 * const cache = new HostKVCache({ numLayers: 2, batchSize: 1, numKvHeads: 2, headDim: 8, maxLength: 64 });
 * cache.dispose();
 * ```
 */
export class HostKVCache extends KVCacheContainer<HostStorage> {
  constructor(options: KVCacheOptions) {
    super(options, new HostStorage(options));
  }
}
