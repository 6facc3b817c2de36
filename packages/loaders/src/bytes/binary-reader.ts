import { ModelFormatError } from '@kvt/core';
import { halfToFloat } from '@kvt/models';

/**
 * A little-endian reader over bytes that never reads past the end: every overrun is a {@link ModelFormatError}
 * naming the file and the field, so a truncated or lying file fails before anything is allocated.
 */
export class BinaryReader {
  private readonly view: DataView;
  offset = 0;
  constructor(
    readonly bytes: Uint8Array,
    readonly file: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  get length(): number {
    return this.bytes.byteLength;
  }
  get remaining(): number {
    return this.bytes.byteLength - this.offset;
  }
  fail(reason: string): never {
    throw new ModelFormatError(this.file, reason);
  }
  need(n: number, what: string): void {
    if (!Number.isFinite(n) || n < 0 || n > this.remaining)
      this.fail(`truncated: ${what} needs ${n} bytes at offset ${this.offset}, but only ${this.remaining} remain`);
  }
  u8(what = 'u8'): number {
    this.need(1, what);
    return this.view.getUint8(this.offset++);
  }
  u16(what = 'u16'): number {
    this.need(2, what);
    const v = this.view.getUint16(this.offset, true);
    this.offset += 2;
    return v;
  }
  u32(what = 'u32'): number {
    this.need(4, what);
    const v = this.view.getUint32(this.offset, true);
    this.offset += 4;
    return v;
  }
  i32(what = 'i32'): number {
    this.need(4, what);
    const v = this.view.getInt32(this.offset, true);
    this.offset += 4;
    return v;
  }
  f32(what = 'f32'): number {
    this.need(4, what);
    const v = this.view.getFloat32(this.offset, true);
    this.offset += 4;
    return v;
  }
  f64(what = 'f64'): number {
    this.need(8, what);
    const v = this.view.getFloat64(this.offset, true);
    this.offset += 8;
    return v;
  }
  /** A u64 that must fit a JavaScript number exactly. */
  u64(what = 'u64'): number {
    this.need(8, what);
    const v = this.view.getBigUint64(this.offset, true);
    this.offset += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`${what} = ${v} is too large`);
    return Number(v);
  }
  i64(what = 'i64'): number {
    this.need(8, what);
    const v = this.view.getBigInt64(this.offset, true);
    this.offset += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) this.fail(`${what} = ${v} is out of range`);
    return Number(v);
  }
  take(n: number, what: string): Uint8Array {
    this.need(n, what);
    const out = this.bytes.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }
  utf8(n: number, what: string): string {
    return decodeUtf8(this.take(n, what), this.file, what);
  }
}

const decoder = new TextDecoder('utf-8', { fatal: true });

export function decodeUtf8(bytes: Uint8Array, file: string, what: string): string {
  try {
    return decoder.decode(bytes);
  } catch {
    throw new ModelFormatError(file, `${what} is not valid UTF-8`);
  }
}

/** float32 values from little-endian bytes (copied, so alignment never matters). */
/**
 * Little-endian float32 data as a view of `bytes` (no copy) where it is 4-byte aligned, else a copy. The view keeps
 * the file's buffer alive while it is used.
 */
export function float32View(bytes: Uint8Array): Float32Array {
  return bytes.byteOffset % 4 === 0 ? new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 2) : float32From(bytes);
}

export function float32From(bytes: Uint8Array): Float32Array {
  return new Float32Array(bytes.slice().buffer);
}

/** IEEE half → float32. */
export function float16ToFloat32(bytes: Uint8Array): Float32Array {
  const n = bytes.byteLength >> 1;
  const out = new Float32Array(n);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < n; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
  return out;
}

/** bfloat16 → float32 (the upper half of a float32). */
export function bfloat16ToFloat32(bytes: Uint8Array): Float32Array {
  const n = bytes.byteLength >> 1;
  const bits = new Uint32Array(n);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < n; i++) bits[i] = view.getUint16(2 * i, true) << 16;
  return new Float32Array(bits.buffer);
}

/** Product of dims as a number, failing on negatives, non-integers and overflow past 2^53. */
export function elementCount(shape: readonly number[], file: string, what: string): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new ModelFormatError(file, `${what} has an invalid dimension ${d}`);
    n *= d;
    if (n > Number.MAX_SAFE_INTEGER) throw new ModelFormatError(file, `${what} has too many elements`);
  }
  return n;
}

/** Checks that byte ranges lie inside `[0, size)` and do not overlap. */
export function checkRanges(ranges: { name: string; start: number; end: number }[], size: number, file: string): void {
  const sorted = [...ranges].sort((a, b) => a.start - b.start);
  let prev: { name: string; end: number } | undefined;
  for (const r of sorted) {
    if (r.start < 0 || r.end > size || r.end < r.start)
      throw new ModelFormatError(file, `tensor ${r.name} lies at bytes [${r.start}, ${r.end}), outside the data (${size} bytes)`);
    if (prev && r.start < prev.end && r.end > r.start)
      throw new ModelFormatError(file, `tensors ${prev.name} and ${r.name} overlap`);
    if (r.end > r.start) prev = r;
  }
}
