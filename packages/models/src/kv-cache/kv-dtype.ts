import type { KVDtype } from '@kvt/core';
import { floatToHalf, halfToFloat } from '../weights/quantize.js';

/** Round half to even (WebAssembly's f32.nearest, C's nearbyint). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * x rounded to fp16 (nearest even) and back.
 *
 * @example
 * ```ts
 * toHalf(0.1); // 0.0999755859375
 * ```
 */
export function toHalf(x: number): number {
  return halfToFloat(floatToHalf(x));
}

/**
 * Positions per block of an int8 K/V cache. Its blocks before the one being filled are int8; that one is fp16 (the
 * recent positions kept in higher precision, as KIVI and Hugging Face's `QuantizedCache` keep theirs).
 */
export const INT8_KV_BLOCK_SIZE = 16;

/** The exponent bias of an int8 position's scale byte (kvt-kernels.c KV_SCALE_BIAS). */
const SCALE_BIAS = 105;
const bits = new Float32Array(1);
const bitsU32 = new Uint32Array(bits.buffer);

/**
 * An int8 position's scale as its byte stores it: an unsigned float of 5 exponent and 3 mantissa bits, the float32
 * whose bits are `code << 20 + 105 << 23` (2^-22 up to 960).
 *
 * @example
 * ```ts
 * int8KVScale(int8KVScaleCode(1.27)); // 0.0107421875: 1.27 / 127 = 1.28 · 2^-7 rounded up to 1.375 · 2^-7
 * ```
 */
export function int8KVScale(code: number): number {
  bitsU32[0] = ((code << 20) + (SCALE_BIAS << 23)) >>> 0;
  return bits[0]!;
}

/** The scale byte of a position whose largest magnitude is `amax`: amax / 127 rounded up to the byte's grid. */
export function int8KVScaleCode(amax: number): number {
  if (!(amax > 0)) return 0;
  bits[0] = amax / 127;
  const code = ((bitsU32[0]! + 0xfffff) >>> 20) - (SCALE_BIAS << 3);
  return Math.max(0, Math.min(255, code));
}

/**
 * Quantizes one position's `x` (hd values, already fp16) as an int8 cache stores it: scale from
 * {@link int8KVScaleCode} of max|x|, each value round(x / scale) (half to even, within ±127) into `codes`; returns the
 * scale byte. kvt-kernels.c's `kv_store_i8`.
 *
 * @example
 * ```ts
 * const codes = new Int8Array(4);
 * int8KVScale(int8KVQuantize(Float32Array.of(0.5, -1, 0.25, 0.125), codes)) * codes[1]!; // -1.001953125, the stored -1
 * ```
 */
export function int8KVQuantize(x: ArrayLike<number>, codes: Int8Array): number {
  let amax = 0;
  for (let i = 0; i < x.length; i++) amax = Math.max(amax, Math.abs(x[i]!));
  const code = int8KVScaleCode(amax);
  const inv = Math.fround(1 / int8KVScale(code));
  for (let i = 0; i < x.length; i++) codes[i] = Math.max(-127, Math.min(127, roundHalfEven(Math.fround(x[i]! * inv))));
  return code;
}

/** One position's `x` (hd values, already fp16) as an int8 cache gives it back ({@link int8KVQuantize}, times the scale). */
export function int8KVRoundTrip(x: Float32Array): Float32Array {
  const codes = new Int8Array(x.length);
  const scale = int8KVScale(int8KVQuantize(x, codes));
  return Float32Array.from(codes, (q) => Math.fround(scale * q));
}

/**
 * Float32 K or V values as a cache storing `dtype` gives them back, where each value is rounded on its own: fp32 as
 * given, fp16 to the nearest half. (An int8 cache's values depend on their block and the key offsets:
 * {@link Int8KVRounding}.)
 *
 * @example
 * ```ts
 * kvRoundTrip(Float32Array.of(0.5, -1, 0.25, 0.1), 'fp16');
 * ```
 */
export function kvRoundTrip(data: Float32Array, dtype: Exclude<KVDtype, 'int8'>): Float32Array {
  return dtype === 'fp32' ? data : data.map(toHalf);
}

/**
 * What an int8 K/V cache stores, in plain arrays, for the reference cache to hold the same values as the backends'
 * kernels (kvt-kernels.c): per layer, the key offsets μ (fp16 of the first key written: row 0's first unpadded
 * position) and how many leading blocks of {@link INT8_KV_BLOCK_SIZE} positions are int8. A position is stored as
 * x = fp16(value − μ) (keys; values: fp16(value)), and as {@link int8KVRoundTrip}(x) once its block is sealed: when a
 * write reaches a later block. Attention over x + μ equals attention over x (softmax cancels q·μ).
 *
 * @example
 * ```ts
 * const rounding = new Int8KVRounding(1);
 * const plan = rounding.plan(0, 0, 20); // a 20-position first write: positions 0…15 int8, 16…19 fp16
 * ```
 */
export class Int8KVRounding {
  private offsets: (Float32Array | null)[];
  private sealedBlocks: number[];

  constructor(numLayers: number) {
    this.offsets = new Array(numLayers).fill(null);
    this.sealedBlocks = new Array(numLayers).fill(0);
  }

  /** The key offsets of `layer`, `[kvHeads · hd]` (undefined before the first write). */
  keyOffsets(layer: number): Float32Array | undefined {
    return this.offsets[layer] ?? undefined;
  }

  /**
   * Before `layer` writes positions [start, start + n): the positions already stored that become int8
   * ([sealFrom, sealTo)) and the first position written as fp16 from then on (`int8Below`).
   */
  plan(layer: number, start: number, n: number): { sealFrom: number; sealTo: number; int8Below: number } {
    const B = INT8_KV_BLOCK_SIZE;
    const sealed = this.sealedBlocks[layer]!;
    const target = Math.max(sealed, (start + n - 1) >> Math.log2(B));
    this.sealedBlocks[layer] = target;
    return { sealFrom: sealed * B, sealTo: Math.min(target * B, start), int8Below: target * B };
  }

  /**
   * New K (`isKey`) or V `[rows, kvHeads, n, hd]` of `layer` at positions start…: stored as described above (the
   * first write sets the key offsets from row 0's position `padding[0]`).
   */
  encode(layer: number, data: Float32Array, shape: readonly number[], start: number, int8Below: number, padding: readonly number[], isKey: boolean): Float32Array {
    const [rows, kvh, n, hd] = shape as [number, number, number, number];
    if (isKey && !this.offsets[layer]) {
      const t0 = Math.min(padding[0] ?? 0, n - 1);
      const mu = new Float32Array(kvh * hd);
      for (let g = 0; g < kvh; g++) for (let i = 0; i < hd; i++) mu[g * hd + i] = toHalf(data[(g * n + t0) * hd + i]!);
      this.offsets[layer] = mu;
    }
    const mu = isKey ? this.offsets[layer]! : undefined;
    const out = new Float32Array(data.length);
    for (let r = 0; r < rows; r++)
      for (let g = 0; g < kvh; g++)
        for (let t = 0; t < n; t++) {
          const at = ((r * kvh + g) * n + t) * hd;
          const x = new Float32Array(hd);
          for (let i = 0; i < hd; i++) x[i] = toHalf(mu ? Math.fround(data[at + i]! - mu[g * hd + i]!) : data[at + i]!);
          out.set(start + t < int8Below ? int8KVRoundTrip(x) : x, at);
        }
    return out;
  }

  /** After a truncation to `length` positions: blocks past it are gone (the last kept one stays as it was). */
  truncate(length: number): void {
    const kept = Math.ceil(length / INT8_KV_BLOCK_SIZE);
    this.sealedBlocks = this.sealedBlocks.map((s) => Math.min(s, kept));
    if (length === 0) this.offsets = this.offsets.map(() => null);
  }

  fork(): Int8KVRounding {
    const copy = new Int8KVRounding(this.offsets.length);
    copy.offsets = [...this.offsets];
    copy.sealedBlocks = [...this.sealedBlocks];
    return copy;
  }
}
