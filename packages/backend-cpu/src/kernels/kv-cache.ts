import * as tf from '@tensorflow/tfjs-core';
import { KVCacheContainer, type KVCacheOptions, type KVStorage, type WriteContext } from '@kvt/kernels';
import { causalPaddingMask, groupedAttention } from '@kvt/models';
import { hostAttentionWasm } from './host-attention-wasm.js';

/** Decode steps with at most this many new positions use the fused kernel; longer prefills use tfjs matMuls. */
const FUSED_MAX_NEW = 8;

/** The SIMD kernel (dots and weighted sums), compiled once; null where WebAssembly SIMD is missing. */
const kernelModule: WebAssembly.Module | null = (() => {
  try {
    const bin = typeof atob === 'function' ? Uint8Array.from(atob(hostAttentionWasm), (c) => c.charCodeAt(0)) : new Uint8Array(0);
    return new WebAssembly.Module(bin);
  } catch {
    return null;
  }
})();

interface Kernel {
  dots(q: number, k: number, start: number, end: number, hd: number, scores: number): void;
  wsum(p: number, v: number, start: number, end: number, hd: number, out: number): void;
}

/**
 * Where everything lives in one `WebAssembly.Memory` (byte offsets): scratch for one head's q `[headDim]`, its output
 * `[headDim]` and its scores `[capacity]`, then K and V of every layer, each `[batch, kvHeads, capacity, headDim]`.
 */
interface Layout {
  readonly memory: WebAssembly.Memory;
  readonly f32: Float32Array;
  readonly kernel: Kernel | null;
  readonly q: number;
  readonly out: number;
  readonly scores: number;
  readonly k: number[];
  readonly v: number[];
}

/**
 * Host-memory storage for the CPU backend: K and V of every layer in one `WebAssembly.Memory`,
 * `[rows, kvHeads, capacity, headDim]`. Appending writes the new rows in place: O(1) in the length, with capacity
 * doubling when full (amortized growth, never past the model's positions). Decode-step attention is a fused kernel
 * that reads only the valid positions `[padding[b], length)`: q·K by WebAssembly SIMD, softmax in JS, Σ p·V by SIMD;
 * no concat, no copy of the cache, no tensor per step but the output. Where WebAssembly SIMD is missing the same
 * loops run in JavaScript. See docs/decisions/0002-kv-cache-storage.md.
 */
export class HostStorage implements KVStorage {
  private layout: Layout;
  private cap: number;
  /**
   * K/V bytes written (see `Cache.bytesWritten`): new rows; every held position on growth or a reorder that changes
   * the number of rows; the rows whose source changes on any other reorder.
   */
  bytesWritten = 0;

  constructor(
    private readonly options: KVCacheOptions,
    private readonly useSimd: boolean,
    rows = options.batchSize,
    cap = Math.min(options.maxLength, Math.max(16, options.capacityHint ?? 64)),
  ) {
    this.cap = cap;
    this.layout = this.allocate(rows, cap);
  }

  /** A fresh memory laid out for `rows` × `cap` (16-byte aligned regions). */
  private allocate(rows: number, cap: number): Layout {
    const { numLayers: L, numKvHeads: kvh, headDim: hd } = this.options;
    const align = (x: number) => Math.ceil(x / 16) * 16;
    const scratch = align(hd * 4); // one head at a time
    const store = align(rows * kvh * cap * hd * 4);
    const q = 0;
    const out = scratch;
    const scores = 2 * scratch;
    let at = align(scores + cap * 4);
    const k: number[] = [];
    const v: number[] = [];
    for (let l = 0; l < L; l++) {
      k.push(at);
      at += store;
      v.push(at);
      at += store;
    }
    const memory = new WebAssembly.Memory({ initial: Math.ceil(at / 65536) || 1 });
    const simd = this.useSimd && kernelModule && hd % 4 === 0;
    const kernel = simd ? (new WebAssembly.Instance(kernelModule!, { env: { memory } }).exports as unknown as Kernel) : null;
    return { memory, f32: new Float32Array(memory.buffer), kernel, q, out, scores, k, v };
  }

  get capacity(): number {
    return this.cap;
  }
  /** Bytes of the `WebAssembly.Memory` really held: K/V, one head's scratch, rounded up to 64 KiB pages. */
  get hostBytes(): number {
    return this.layout.memory.buffer.byteLength;
  }

  /** Copies rows (`from[i]` → row i) and the first `length` positions into a new layout of `newCap`. */
  private relayout(from: readonly number[], newCap: number, length: number): void {
    const old = this.layout;
    const oldCap = this.cap;
    const next = this.allocate(from.length, newCap);
    const { numKvHeads: kvh, headDim: hd } = this.options;
    for (let l = 0; l < this.options.numLayers; l++) {
      for (const [src, dst] of [[old.k[l]!, next.k[l]!], [old.v[l]!, next.v[l]!]] as const) {
        from.forEach((r, to) => {
          for (let h = 0; h < kvh; h++) {
            const s = src / 4 + (r * kvh + h) * oldCap * hd;
            next.f32.set(old.f32.subarray(s, s + length * hd), dst / 4 + (to * kvh + h) * newCap * hd);
          }
        });
      }
    }
    this.layout = next;
    this.cap = newCap;
    this.bytesWritten += 8 * this.options.numLayers * from.length * kvh * length * hd;
  }

  async read(layer: number, length: number, rows: number): Promise<{ k: Float32Array; v: Float32Array }> {
    const { numKvHeads: kvh, headDim: hd } = this.options;
    const { f32 } = this.layout;
    const [k, v] = [this.layout.k[layer]!, this.layout.v[layer]!].map((base) => {
      const out = new Float32Array(rows * kvh * length * hd);
      for (let r = 0; r < rows; r++)
        for (let h = 0; h < kvh; h++) {
          const s = base / 4 + (r * kvh + h) * this.cap * hd;
          out.set(f32.subarray(s, s + length * hd), (r * kvh + h) * length * hd);
        }
      return out;
    });
    return { k: k!, v: v! };
  }

  reserve(needed: number, length: number, rows: number): void {
    // amortized growth: double (never past the model's positions), copying the valid rows once
    const cap = Math.min(this.options.maxLength, Math.max(needed, 2 * this.cap));
    this.relayout(Array.from({ length: rows }, (_, r) => r), cap, length);
  }

  attend(layer: number, q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, at: WriteContext): tf.Tensor4D {
    const [b, H, n, hd] = q.shape;
    const kvh = this.options.numKvHeads;
    const { f32 } = this.layout;
    const cap = this.cap;
    const len = at.start;
    const kBase = this.layout.k[layer]! / 4;
    const vBase = this.layout.v[layer]! / 4;
    // write the new rows in place: K[b, h, len + i, :] = k[b, h, i, :]
    const kIn = k.dataSync() as Float32Array;
    const vIn = v.dataSync() as Float32Array;
    for (let bh = 0; bh < b * kvh; bh++) {
      f32.set(kIn.subarray(bh * n * hd, (bh + 1) * n * hd), kBase + (bh * cap + len) * hd);
      f32.set(vIn.subarray(bh * n * hd, (bh + 1) * n * hd), vBase + (bh * cap + len) * hd);
    }
    this.bytesWritten += 8 * b * kvh * n * hd;
    const total = len + n;
    if (n > FUSED_MAX_NEW) {
      // a long prefill: matMuls over a copy of the valid rows (once per prompt)
      const view = (base: number) => {
        const out = new Float32Array(b * kvh * total * hd);
        for (let bh = 0; bh < b * kvh; bh++) out.set(f32.subarray(base + bh * cap * hd, base + (bh * cap + total) * hd), bh * total * hd);
        return tf.tensor4d(out, [b, kvh, total, hd]);
      };
      const mask = tf.tensor4d(causalPaddingMask(at.padding, len, n, total), [b, 1, n, total]);
      return groupedAttention(q, view(kBase), view(vBase), mask);
    }
    return tf.tensor4d(this.fusedAttention(q.dataSync() as Float32Array, layer, b, H, n, at), [b, H, n, hd]);
  }

  /** softmax(q · Kᵀ) · V over positions [padding[b], start + i] of each row; q is already scaled. */
  private fusedAttention(qd: Float32Array, layer: number, b: number, H: number, n: number, at: WriteContext): Float32Array {
    const { f32, kernel } = this.layout;
    const hd = this.options.headDim;
    const cap = this.cap;
    const groups = H / this.options.numKvHeads;
    const qAt = this.layout.q;
    const outAt = this.layout.out;
    const sAt = this.layout.scores;
    const scores = f32.subarray(sAt / 4, sAt / 4 + cap);
    const qHead = f32.subarray(qAt / 4, qAt / 4 + hd);
    const outHead = f32.subarray(outAt / 4, outAt / 4 + hd);
    const result = new Float32Array(b * H * n * hd); // [b, H, n, hd]
    for (let r = 0; r < b; r++) {
      const start = at.padding[r]!;
      for (let h = 0; h < H; h++) {
        const head = (r * this.options.numKvHeads + Math.floor(h / groups)) * cap * hd * 4;
        const kAt = this.layout.k[layer]! + head;
        const vAt = this.layout.v[layer]! + head;
        for (let i = 0; i < n; i++) {
          const row = ((r * H + h) * n + i) * hd;
          qHead.set(qd.subarray(row, row + hd));
          const end = at.start + i + 1;
          if (kernel) kernel.dots(qAt, kAt, start, end, hd, sAt);
          else jsDots(f32, qAt / 4, kAt / 4, start, end, hd, scores);
          let max = -Infinity;
          for (let j = start; j < end; j++) if (scores[j]! > max) max = scores[j]!;
          let sum = 0;
          for (let j = start; j < end; j++) {
            const e = Math.exp(scores[j]! - max);
            scores[j] = e;
            sum += e;
          }
          const inv = 1 / sum;
          for (let j = start; j < end; j++) scores[j] = scores[j]! * inv;
          if (kernel) kernel.wsum(sAt, vAt, start, end, hd, outAt);
          else jsWeightedSum(f32, scores, vAt / 4, start, end, hd, outAt / 4);
          result.set(outHead, row);
        }
      }
    }
    return result;
  }

  reorder(indices: readonly number[], length: number, rows: number): void {
    if (indices.length !== rows) {
      this.relayout(indices, this.cap, length); // more or fewer rows: a new layout
      return;
    }
    // the same rows: only those whose source changes are written (beams kept in place move nothing); their sources
    // are copied out first, since a source may be a row that is overwritten
    const changed = indices.flatMap((src, dst) => (src === dst ? [] : [dst]));
    if (changed.length === 0) return;
    const { numKvHeads: kvh, headDim: hd, numLayers } = this.options;
    const span = length * hd;
    const { f32 } = this.layout;
    const held = new Float32Array(changed.length * kvh * span);
    const at = (base: number, r: number, h: number) => base / 4 + (r * kvh + h) * this.cap * hd;
    for (let l = 0; l < numLayers; l++)
      for (const base of [this.layout.k[l]!, this.layout.v[l]!]) {
        changed.forEach((dst, i) => {
          for (let h = 0; h < kvh; h++) held.set(f32.subarray(at(base, indices[dst]!, h), at(base, indices[dst]!, h) + span), (i * kvh + h) * span);
        });
        changed.forEach((dst, i) => {
          for (let h = 0; h < kvh; h++) f32.set(held.subarray((i * kvh + h) * span, (i * kvh + h + 1) * span), at(base, dst, h));
        });
      }
    this.bytesWritten += 8 * numLayers * changed.length * kvh * span;
  }

  fork(_length: number, rows: number): HostStorage {
    const copy = new HostStorage(this.options, this.useSimd, rows, this.cap);
    copy.layout.f32.set(this.layout.f32);
    copy.bytesWritten = this.layout.f32.byteLength;
    return copy;
  }

  dispose(): void {
    this.layout = { ...this.layout, f32: new Float32Array(0) };
  }
}

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
  /** `useSimd: false` runs the JavaScript loops (for tests; SIMD is used wherever it exists). */
  constructor(options: KVCacheOptions & { readonly useSimd?: boolean }) {
    super(options, new HostStorage(options, options.useSimd ?? true));
  }
}

function jsDots(f32: Float32Array, q: number, k: number, start: number, end: number, hd: number, scores: Float32Array): void {
  for (let j = start; j < end; j++) {
    const row = k + j * hd;
    let s = 0;
    for (let d = 0; d < hd; d++) s += f32[q + d]! * f32[row + d]!;
    scores[j] = s;
  }
}

function jsWeightedSum(f32: Float32Array, p: Float32Array, v: number, start: number, end: number, hd: number, out: number): void {
  f32.fill(0, out, out + hd);
  for (let j = start; j < end; j++) {
    const row = v + j * hd;
    const pj = p[j]!;
    for (let d = 0; d < hd; d++) f32[out + d] += pj * f32[row + d]!;
  }
}
