import { ModelFormatError, UnsupportedError } from '@kvt/core';
import { hostTensor, type HostTensor } from '@kvt/models';
import { BinaryReader, bfloat16ToFloat32, checkRanges, decodeUtf8, elementCount, float16ToFloat32, float32From } from '../bytes/binary-reader.js';

export interface SafetensorsEntry {
  readonly name: string;
  readonly dtype: 'F32' | 'F16' | 'BF16';
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

const SIZES = { F32: 4, F16: 2, BF16: 2 } as const;
const MAX_HEADER = 100 << 20;

/**
 * Parses a `.safetensors` file: an 8-byte little-endian header length, a JSON header, then the data. Checks that
 * the header fits the file, every dtype is F32/F16/BF16, every shape matches its byte range, and ranges lie inside
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
      throw new UnsupportedError(`${file}: tensor ${name} has dtype ${dtypeName}; kvt reads F32, F16 and BF16.`);
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
  const raw = st.data.subarray(e.start, e.end);
  const values = e.dtype === 'F32' ? float32From(raw) : e.dtype === 'F16' ? float16ToFloat32(raw) : bfloat16ToFloat32(raw);
  return hostTensor(values, e.shape);
}

/**
 * Writes tensors as a `.safetensors` file (float32 or float16): used by tests to make Hugging Face-layout folders.
 *
 * @example
 * ```ts
 * const bytes = writeSafetensors({ 'lm_head.weight': hostTensor(data, [V, d]) });
 * ```
 */
export function writeSafetensors(tensors: Record<string, HostTensor>, dtype: 'F32' | 'F16' = 'F32'): Uint8Array {
  const header: Record<string, unknown> = {};
  let offset = 0;
  const parts: Uint8Array[] = [];
  for (const [name, t] of Object.entries(tensors)) {
    const bytes = dtype === 'F32' ? new Uint8Array(t.data.slice().buffer) : floatToHalfBytes(t.data);
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes.byteLength] };
    offset += bytes.byteLength;
    parts.push(bytes);
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
