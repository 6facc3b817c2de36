import type { KVDtype } from '@kvt/core';
import { floatToHalf, halfToFloat } from '../weights/quantize.js';

/** Round half to even (WebAssembly's f32.nearest, C's nearbyint). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Float32 K or V rows (`headDim` values per position and head) as a cache storing `dtype` gives them back: fp16
 * rounds each value to the nearest half; int8 takes scale = max|x| / 127 per row and rounds x / scale half to even
 * (the wasm kernels' rule). The reference cache stores these values, so backends are checked against it.
 *
 * @example
 * ```ts
 * kvRoundTrip(Float32Array.of(0.5, -1, 0.25, 0.125), 4, 'int8');
 * ```
 */
export function kvRoundTrip(data: Float32Array, headDim: number, dtype: KVDtype): Float32Array {
  if (dtype === 'fp32') return data;
  const out = new Float32Array(data.length);
  if (dtype === 'fp16') {
    for (let i = 0; i < data.length; i++) out[i] = halfToFloat(floatToHalf(data[i]!));
    return out;
  }
  for (let at = 0; at < data.length; at += headDim) {
    let amax = 0;
    for (let i = 0; i < headDim; i++) amax = Math.max(amax, Math.abs(data[at + i]!));
    const scale = Math.fround(amax / 127);
    const inv = amax > 0 ? Math.fround(1 / scale) : 0;
    for (let i = 0; i < headDim; i++) out[at + i] = Math.fround(scale * roundHalfEven(Math.fround(data[at + i]! * inv)));
  }
  return out;
}
