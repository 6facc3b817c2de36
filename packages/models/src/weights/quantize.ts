import { InvalidOptionError, ShapeMismatchError } from '@kvt/core';
import { BLOCK, blockBytes, blockValues, bytesPerRow, type QuantizedFormat } from '@kvt/kernels';
import type { HostTensor } from './host-tensor.js';

/**
 * A quantized matrix in host memory: `rows` rows of `cols` values, each row blocks of 32 in GGUF's layout (see
 * `WeightFormat` in `@kvt/kernels`). `transposed`: kvt's layout of this parameter is `[cols, rows]` (a Linear weight
 * `[in, out]` is held as rows `[out, in]`), else `[rows, cols]` (an embedding table).
 */
export interface QuantizedHostTensor {
  readonly format: QuantizedFormat;
  readonly bytes: Uint8Array;
  readonly rows: number;
  readonly cols: number;
  readonly transposed: boolean;
}

// fp16 ↔ fp32 for the block scales
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 → the nearest fp16 (round half to even), as bits. */
export function floatToHalf(v: number): number {
  f32[0] = v;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
  return sign | h;
}

/** fp16 bits → float32 (exact). */
export function halfToFloat(h: number): number {
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  const sign = h & 0x8000 ? -1 : 1;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/**
 * Quantizes a row-major matrix `[rows, cols]` (cols a multiple of the format's block: 32, or 256 for q4_k) as
 * llama.cpp's reference quantizers do, in float32 arithmetic: Q8_0 blocks take d = max|x| / 127, q = roundf(x · (1/d));
 * Q4_0 blocks take the value of largest magnitude m, d = m / −8, q = min(15, (int)(x · (1/d) + 8.5)). `fp16` rounds
 * each value to the nearest half. Q4_K: see {@link quantizeQ4K}.
 *
 * @example
 * ```ts
 * const q = quantizeRows(Float32Array.from({ length: 64 }, Math.random), 2, 32, 'q8_0'); // 2 rows × 34 bytes
 * ```
 */
export function quantizeRows(data: Float32Array, rows: number, cols: number, format: QuantizedFormat): Uint8Array {
  const values = blockValues(format);
  if (cols % values !== 0) throw new InvalidOptionError('weights', format, `rows of a multiple of ${values} values (these have ${cols})`);
  if (data.length !== rows * cols) throw new ShapeMismatchError('quantizeRows', [rows, cols], [data.length]);
  const out = new Uint8Array(rows * bytesPerRow(format, cols));
  const view = new DataView(out.buffer);
  const size = blockBytes(format);
  let at = 0;
  if (format === 'fp16') {
    data.forEach((v, i) => view.setUint16(2 * i, floatToHalf(v), true));
    return out;
  }
  if (format === 'q4_k') {
    for (let i = 0; i < data.length; i += 256, at += size) quantizeQ4K(data.subarray(i, i + 256), out.subarray(at, at + size));
    return out;
  }
  for (let i = 0; i < data.length; i += BLOCK, at += size) {
    if (format === 'q8_0') {
      let amax = 0;
      for (let k = 0; k < BLOCK; k++) amax = Math.max(amax, Math.abs(data[i + k]!));
      const d = Math.fround(amax / 127);
      const inv = d ? Math.fround(1 / d) : 0;
      view.setUint16(at, floatToHalf(d), true);
      for (let k = 0; k < BLOCK; k++) view.setInt8(at + 2 + k, roundHalfAway(Math.fround(data[i + k]! * inv)));
    } else {
      let max = 0;
      for (let k = 0; k < BLOCK; k++) if (Math.abs(data[i + k]!) > Math.abs(max)) max = data[i + k]!;
      const d = Math.fround(max / -8);
      const inv = d ? Math.fround(1 / d) : 0;
      view.setUint16(at, floatToHalf(d), true);
      const q = (x: number) => Math.min(15, Math.trunc(Math.fround(Math.fround(x * inv) + 8.5)));
      for (let k = 0; k < 16; k++) {
        const lo = q(data[i + k]!);
        const hi = q(data[i + 16 + k]!);
        out[at + 2 + k] = lo | (hi << 4);
      }
    }
  }
  return out;
}

/**
 * One Q4_K super-block (256 values → 144 bytes, layout in `WeightFormat`). Each sub-block of 32 maps [min(0, lo), hi]
 * onto the nibbles 0…15 (scale (hi − min) / 15, min stored as its magnitude); the eight scales and eight mins are
 * quantized to 6 bits against d = max scale / 63 and dmin = max min / 63 (fp16), and every value is then rounded with
 * the scale and min it decodes with. (llama.cpp's quantizer also searches each sub-block's scale and min; kvt keeps
 * Q4_K files as stored and quantizes at load with this simpler rule.)
 */
function quantizeQ4K(x: Float32Array, out: Uint8Array): void {
  const scales = new Float32Array(8);
  const mins = new Float32Array(8);
  for (let j = 0; j < 8; j++) {
    let lo = 0;
    let hi = -Infinity;
    for (let k = 0; k < 32; k++) {
      const v = x[32 * j + k]!;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    scales[j] = Math.fround((hi - lo) / 15);
    mins[j] = -lo;
  }
  const dh = floatToHalf(Math.fround(Math.max(...scales) / 63));
  const mh = floatToHalf(Math.fround(Math.max(...mins) / 63));
  const [d, dmin] = [halfToFloat(dh), halfToFloat(mh)];
  out[0] = dh & 255;
  out[1] = dh >> 8;
  out[2] = mh & 255;
  out[3] = mh >> 8;
  const sc = scales.map((v) => (d > 0 ? Math.min(63, Math.round(v / d)) : 0));
  const m = mins.map((v) => (dmin > 0 ? Math.min(63, Math.round(v / dmin)) : 0));
  const packed = out.subarray(4, 16);
  packed.fill(0);
  for (let j = 0; j < 8; j++) {
    if (j < 4) {
      packed[j] = sc[j]!;
      packed[j + 4] = m[j]!;
    } else {
      packed[j + 4] = (sc[j]! & 15) | ((m[j]! & 15) << 4);
      packed[j - 4]! |= (sc[j]! >> 4) << 6;
      packed[j]! |= (m[j]! >> 4) << 6;
    }
  }
  for (let j = 0; j < 8; j++) {
    const step = Math.fround(d * sc[j]!);
    const offset = Math.fround(dmin * m[j]!);
    for (let k = 0; k < 32; k++) {
      const q = step > 0 ? Math.max(0, Math.min(15, Math.round((x[32 * j + k]! + offset) / step))) : 0;
      // sub-block j: bytes 32·⌊j/2⌋…, low nibbles for even j, high for odd
      const at = 16 + 32 * (j >> 1) + k;
      out[at] = j & 1 ? (out[at]! & 15) | (q << 4) : (out[at]! & 0xf0) | q;
    }
  }
}

/** Q4_K's 6-bit scale and min of sub-block j (0…7) from the 12 packed bytes at `at` (llama.cpp's get_scale_min_k4). */
function q4kScaleMin(bytes: Uint8Array, at: number, j: number): [scale: number, min: number] {
  if (j < 4) return [bytes[at + j]! & 63, bytes[at + j + 4]! & 63];
  return [(bytes[at + j + 4]! & 15) | ((bytes[at + j - 4]! >> 6) << 4), (bytes[at + j + 4]! >> 4) | ((bytes[at + j]! >> 6) << 4)];
}

/** The 256 values of the Q4_K super-block at `at` into `out` (from `to`): d·sc·q − dmin·m, in float32 arithmetic. */
export function dequantizeQ4K(bytes: Uint8Array, at: number, out: Float32Array, to = 0): void {
  const d = halfToFloat(bytes[at]! | (bytes[at + 1]! << 8));
  const dmin = halfToFloat(bytes[at + 2]! | (bytes[at + 3]! << 8));
  for (let j = 0; j < 8; j++) {
    const [sc, m] = q4kScaleMin(bytes, at + 4, j);
    const step = Math.fround(d * sc);
    const offset = Math.fround(dmin * m);
    const q = at + 16 + 32 * (j >> 1);
    for (let k = 0; k < 32; k++) out[to + 32 * j + k] = Math.fround(step * (j & 1 ? bytes[q + k]! >> 4 : bytes[q + k]! & 15)) - offset;
  }
}

/** C's roundf: halves away from zero. */
const roundHalfAway = (v: number) => Math.sign(v) * Math.round(Math.abs(v));

/** The float32 values of quantized rows `[rows, cols]` (row-major). */
export function dequantizeRows(bytes: Uint8Array, rows: number, cols: number, format: QuantizedFormat): Float32Array {
  const out = new Float32Array(rows * cols);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = blockBytes(format);
  if (format === 'fp16') {
    for (let i = 0; i < out.length; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
    return out;
  }
  if (format === 'q4_k') {
    for (let b = 0, at = 0; b < out.length; b += 256, at += size) dequantizeQ4K(bytes, at, out, b);
    return out;
  }
  for (let b = 0, at = 0; b < out.length; b += BLOCK, at += size) {
    const d = halfToFloat(view.getUint16(at, true));
    if (format === 'q8_0') for (let k = 0; k < BLOCK; k++) out[b + k] = d * view.getInt8(at + 2 + k);
    else
      for (let k = 0; k < 16; k++) {
        const byte = bytes[at + 2 + k]!;
        out[b + k] = d * ((byte & 15) - 8);
        out[b + 16 + k] = d * ((byte >> 4) - 8);
      }
  }
  return out;
}

/** A quantized entry as float32 in kvt's layout (the fallback for backends without quantized kernels). */
export function dequantize(q: QuantizedHostTensor): HostTensor {
  const rowsMajor = dequantizeRows(q.bytes, q.rows, q.cols, q.format);
  if (!q.transposed) return { data: rowsMajor, shape: [q.rows, q.cols] };
  const out = new Float32Array(q.rows * q.cols);
  for (let r = 0; r < q.rows; r++) for (let c = 0; c < q.cols; c++) out[c * q.rows + r] = rowsMajor[r * q.cols + c]!;
  return { data: out, shape: [q.cols, q.rows] };
}
