import { ModelFormatError, UnsupportedError } from '@kvt/core';
import { dequantizeRows, hostTensor, type HostTensor, type QuantizedHostTensor } from '@kvt/models';
import { BLOCK, blockBytes, type QuantizedFormat } from '@kvt/kernels';
import { BinaryReader, bfloat16ToFloat32, checkRanges, decodeUtf8, elementCount, float16ToFloat32, float32From } from '../bytes/binary-reader.js';

export interface SafetensorsEntry {
  readonly name: string;
  readonly dtype: 'F32' | 'F16' | 'BF16' | 'I8' | 'U8';
  readonly shape: readonly number[];
  readonly start: number;
  readonly end: number;
}

export interface SafetensorsFile {
  readonly file: string;
  readonly entries: ReadonlyMap<string, SafetensorsEntry>;
  readonly metadata: Readonly<Record<string, string>>;
  readonly data: Uint8Array;
}

const SIZES = { F32: 4, F16: 2, BF16: 2, I8: 1, U8: 1 } as const;
const MAX_HEADER = 100 << 20;

/**
 * Parses a `.safetensors` file: an 8-byte little-endian header length, a JSON header, then the data. Checks that
 * the header fits the file, every dtype is F32/F16/BF16 (or I8/U8 of a quantized weight), every shape matches its byte range, and ranges lie inside
 * the data without overlapping.
 *
 * @example
 * ```ts
 * const st = parseSafetensors(bytes, 'model.safetensors');
 * const w = readSafetensor(st, 'model.shared.weight');
 * ```
 */
export function parseSafetensors(bytes: Uint8Array, file: string): SafetensorsFile {
  const r = new BinaryReader(bytes, file);
  const headerLength = r.u64('header length');
  if (headerLength > r.remaining || headerLength > MAX_HEADER)
    r.fail(`header length ${headerLength} runs past the end of the file (${bytes.byteLength} bytes)`);
  const text = decodeUtf8(r.take(headerLength, 'header'), file, 'header');
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch {
    r.fail('the header is not valid JSON');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) r.fail('the header is not a JSON object');
  const data = bytes.subarray(8 + headerLength);
  const entries = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw === 'object' && raw !== null) metadata = raw as Record<string, string>;
      continue;
    }
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e !== 'object' || e === null) r.fail(`entry ${name} is not an object`);
    if (typeof e.dtype !== 'string') r.fail(`tensor ${name} has no dtype`);
    const dtypeName = e.dtype as string;
    if (!(dtypeName in SIZES))
      throw new UnsupportedError(`${file}: tensor ${name} has dtype ${dtypeName}; kvt reads F32, F16, BF16, and I8/U8 quantized weights with a _scale.`);
    if (!Array.isArray(e.shape) || e.shape.length > 8) r.fail(`tensor ${name} has no valid shape`);
    const n = elementCount(e.shape as number[], file, `tensor ${name}`);
    const offsets = e.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((x) => Number.isSafeInteger(x) && x >= 0))
      r.fail(`tensor ${name} has invalid data_offsets`);
    const [start, end] = offsets as [number, number];
    const dtype = e.dtype as SafetensorsEntry['dtype'];
    if (end - start !== n * SIZES[dtype])
      r.fail(`tensor ${name}: shape [${(e.shape as number[]).join(', ')}] ${dtype} needs ${n * SIZES[dtype]} bytes but data_offsets span ${end - start}`);
    entries.set(name, { name, dtype, shape: e.shape as number[], start, end });
  }
  checkRanges([...entries.values()].map((e) => ({ name: e.name, start: e.start, end: e.end })), data.byteLength, file);
  return { file, entries, metadata, data };
}

export function readSafetensor(st: SafetensorsFile, name: string): HostTensor {
  const e = st.entries.get(name);
  if (!e) throw new ModelFormatError(st.file, `tensor ${name} is missing`);
  if (e.dtype === 'I8' || e.dtype === 'U8') {
    const q = readQuantizedSafetensor(st, name);
    if (!q) throw new ModelFormatError(st.file, `tensor ${name} is ${e.dtype} without a ${name}_scale; kvt reads I8/U8 tensors only as quantized weights`);
    return hostTensor(dequantizeRows(q.bytes, q.rows, q.cols, q.format), [q.rows, q.cols]);
  }
  const raw = st.data.subarray(e.start, e.end);
  const values = e.dtype === 'F32' ? float32From(raw) : e.dtype === 'F16' ? float16ToFloat32(raw) : bfloat16ToFloat32(raw);
  return hostTensor(values, e.shape);
}

/**
 * kvt's quantized safetensors weights (the int8-with-group-scales layout of compressed-tensors, groups of 32 along a
 * row): a weight `[rows, cols]` is `name` (I8 `[rows, cols]` for q8_0; U8 `[rows, cols / 2]` for q4_0, each group's 16
 * bytes holding values i and i + 16 in their low and high nibbles, offset by 8, as GGUF's Q4_0) beside `name_scale`
 * (F16 `[rows, cols / 32]`). Any safetensors reader reads them; value = scale × q.
 *
 * @example
 * ```ts
 * const q = readQuantizedSafetensor(st, 'model.decoder.layers.0.fc1.weight'); // undefined for a float tensor
 * ```
 */
export function readQuantizedSafetensor(st: SafetensorsFile, name: string): QuantizedHostTensor | undefined {
  const e = st.entries.get(name);
  const s = st.entries.get(`${name}_scale`);
  if (!e || (e.dtype !== 'I8' && e.dtype !== 'U8') || !s) return undefined;
  const format: QuantizedFormat = e.dtype === 'I8' ? 'q8_0' : 'q4_0';
  const [rows, stored] = e.shape as [number, number];
  const cols = format === 'q8_0' ? stored : 2 * stored;
  if (e.shape.length !== 2 || cols % BLOCK !== 0)
    throw new ModelFormatError(st.file, `quantized tensor ${name} has shape [${e.shape.join(', ')}]; expected [rows, a multiple of ${format === 'q8_0' ? 32 : 16}]`);
  if (s.dtype !== 'F16' || s.shape.length !== 2 || s.shape[0] !== rows || s.shape[1] !== cols / BLOCK)
    throw new ModelFormatError(st.file, `${name}_scale must be F16 [${rows}, ${cols / BLOCK}] (a scale per ${BLOCK} values); it is ${s.dtype} [${s.shape.join(', ')}]`);
  const values = st.data.subarray(e.start, e.end);
  const scales = st.data.subarray(s.start, s.end);
  const size = blockBytes(format);
  const per = size - 2;
  const blocks = rows * (cols / BLOCK);
  const bytes = new Uint8Array(blocks * size);
  for (let b = 0; b < blocks; b++) {
    bytes[b * size] = scales[2 * b]!;
    bytes[b * size + 1] = scales[2 * b + 1]!;
    bytes.set(values.subarray(b * per, (b + 1) * per), b * size + 2);
  }
  return { format, bytes, rows, cols, transposed: false };
}

/**
 * Writes tensors as a `.safetensors` file: float tensors as float32 or float16, fp16 rows as F16, quantized rows
 * (`[rows, cols]`, as stored) in kvt's quantized layout (see {@link readQuantizedSafetensor}: `name` and `name_scale`).
 *
 * @example
 * ```ts
 * const bytes = writeSafetensors({ 'lm_head.weight': hostTensor(data, [V, d]) });
 * ```
 */
export function writeSafetensors(
  tensors: Record<string, HostTensor | QuantizedHostTensor>,
  dtype: 'F32' | 'F16' = 'F32',
  metadata: Record<string, string> = {},
): Uint8Array {
  const header: Record<string, unknown> = Object.keys(metadata).length > 0 ? { __metadata__: metadata } : {};
  let offset = 0;
  const parts: Uint8Array[] = [];
  const add = (name: string, entryType: SafetensorsEntry['dtype'], shape: readonly number[], bytes: Uint8Array) => {
    header[name] = { dtype: entryType, shape, data_offsets: [offset, offset + bytes.byteLength] };
    offset += bytes.byteLength;
    parts.push(bytes);
  };
  for (const [name, t] of Object.entries(tensors)) {
    if ('format' in t && t.format === 'fp16') add(name, 'F16', [t.rows, t.cols], t.bytes);
    else if ('format' in t) {
      const { values, scales } = splitBlocks(t);
      add(name, t.format === 'q8_0' ? 'I8' : 'U8', [t.rows, t.format === 'q8_0' ? t.cols : t.cols / 2], values);
      add(`${name}_scale`, 'F16', [t.rows, t.cols / BLOCK], scales);
    } else add(name, dtype, t.shape, dtype === 'F32' ? new Uint8Array(t.data.slice().buffer) : floatToHalfBytes(t.data));
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.byteLength), true);
  out.set(head, 8);
  let at = 8 + head.byteLength;
  for (const p of parts) out.set(p, at), (at += p.byteLength);
  return out;
}

/** Quantized rows as their values (int8, or packed nibbles) and their fp16 scales, each contiguous. */
function splitBlocks(q: QuantizedHostTensor): { values: Uint8Array; scales: Uint8Array } {
  const size = blockBytes(q.format);
  const per = size - 2;
  const blocks = q.bytes.byteLength / size;
  const values = new Uint8Array(blocks * per);
  const scales = new Uint8Array(blocks * 2);
  for (let b = 0; b < blocks; b++) {
    scales[2 * b] = q.bytes[b * size]!;
    scales[2 * b + 1] = q.bytes[b * size + 1]!;
    values.set(q.bytes.subarray(b * size + 2, (b + 1) * size), b * per);
  }
  return { values, scales };
}

function floatToHalfBytes(values: Float32Array): Uint8Array {
  const out = new Uint8Array(values.length * 2);
  const view = new DataView(out.buffer);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  values.forEach((v, i) => {
    f[0] = v;
    const x = u[0]!;
    const sign = (x >>> 16) & 0x8000;
    let exp = ((x >>> 23) & 0xff) - 127 + 15;
    let mant = x & 0x7fffff;
    let h: number;
    if (exp >= 31) h = sign | 0x7c00 | (((x >>> 23) & 0xff) === 255 && mant ? 0x200 : 0);
    else if (exp <= 0) {
      if (exp < -10) h = sign;
      else {
        mant = (mant | 0x800000) >> (1 - exp);
        h = sign | ((mant + 0x1000) >> 13);
      }
    } else {
      h = sign | (exp << 10) | (mant >> 13);
      if (mant & 0x1000) h++; // round half up (ties away): enough for test data
    }
    view.setUint16(i * 2, h, true);
    void exp;
  });
  return out;
}
