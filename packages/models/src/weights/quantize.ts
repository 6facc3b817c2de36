import { InvalidOptionError, ShapeMismatchError } from '@kvt/core';
import { BLOCK, blockBytes, bytesPerRow, type QuantizedFormat } from '@kvt/kernels';
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
 * Quantizes a row-major matrix `[rows, cols]` (cols a multiple of 32) as llama.cpp's reference quantizers do, in
 * float32 arithmetic: Q8_0 blocks take d = max|x| / 127, q = roundf(x · (1/d)); Q4_0 blocks take the value of largest
 * magnitude m, d = m / −8, q = min(15, (int)(x · (1/d) + 8.5)). `fp16` rounds each value to the nearest half.
 *
 * @example
 * ```ts
 * const q = quantizeRows(Float32Array.from({ length: 64 }, Math.random), 2, 32, 'q8_0'); // 2 rows × 34 bytes
 * ```
 */
export function quantizeRows(data: Float32Array, rows: number, cols: number, format: QuantizedFormat): Uint8Array {
  if (cols % BLOCK !== 0) throw new InvalidOptionError('weights', format, `rows of a multiple of ${BLOCK} values (these have ${cols})`);
  if (data.length !== rows * cols) throw new ShapeMismatchError('quantizeRows', [rows, cols], [data.length]);
  const out = new Uint8Array(rows * bytesPerRow(format, cols));
  const view = new DataView(out.buffer);
  const size = blockBytes(format);
  let at = 0;
  if (format === 'fp16') {
    data.forEach((v, i) => view.setUint16(2 * i, floatToHalf(v), true));
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
