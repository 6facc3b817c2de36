import { ModelFormatError, UnsupportedError } from '@kvt/core';
import { blockBytes, blockValues } from '@kvt/kernels';
import { ParameterSet, dequantizeRows, hostTensor, transpose2d, type HostTensor, type LlamaConfig, type QuantizedHostTensor } from '@kvt/models';
import { BinaryReader, checkRanges, elementCount, float16ToFloat32, float32From, bfloat16ToFloat32 } from '../bytes/binary-reader.js';
import { ScoreBpeTokenizer } from '../tokenizers/score-bpe.js';
import type { ParsedCheckpoint } from './llama2c.js';

/** A metadata value of a GGUF file. */
export type GgufValue = number | bigint | boolean | string | GgufValue[];

export interface GgufTensorInfo {
  readonly name: string;
  /** ggml order: dims[0] varies fastest. */
  readonly dims: readonly number[];
  readonly type: number;
  /** Byte offset inside the data section. */
  readonly offset: number;
  readonly byteLength: number;
}

export interface GgufFile {
  readonly version: number;
  readonly metadata: ReadonlyMap<string, GgufValue>;
  readonly tensors: readonly GgufTensorInfo[];
  readonly dataOffset: number;
  readonly bytes: Uint8Array;
  readonly file: string;
}

const GGML = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8, Q4_K: 12, BF16: 30 } as const;
const TYPE_NAMES: Record<number, string> = { 0: 'F32', 1: 'F16', 2: 'Q4_0', 3: 'Q4_1', 6: 'Q5_0', 7: 'Q5_1', 8: 'Q8_0', 10: 'Q2_K', 11: 'Q3_K', 12: 'Q4_K', 13: 'Q5_K', 14: 'Q6_K', 30: 'BF16' };
/** kvt's format of each quantized ggml type it keeps as stored. */
const QUANTIZED: Partial<Record<number, 'q8_0' | 'q4_0' | 'q4_k'>> = { [GGML.Q8_0]: 'q8_0', [GGML.Q4_0]: 'q4_0', [GGML.Q4_K]: 'q4_k' };

function tensorBytes(type: number, n: number, name: string, file: string): number {
  switch (type) {
    case GGML.F32:
      return 4 * n;
    case GGML.F16:
    case GGML.BF16:
      return 2 * n;
    case GGML.Q8_0:
    case GGML.Q4_0:
    case GGML.Q4_K: {
      const format = QUANTIZED[type]!;
      if (n % blockValues(format) !== 0) throw new ModelFormatError(file, `${TYPE_NAMES[type]} tensor ${name} has ${n} elements, not a multiple of ${blockValues(format)}`);
      return (n / blockValues(format)) * blockBytes(format);
    }
    default:
      throw new UnsupportedError(
        `${file}: tensor ${name} has ggml type ${TYPE_NAMES[type] ?? type}; kvt reads F32, F16, BF16, Q8_0, Q4_0 and Q4_K. Convert the model (llama.cpp's quantize with q8_0, q4_0, q4_k_s or f16).`,
      );
  }
}

/**
 * Parses a GGUF (v2 or v3) file's header, metadata and tensor table, checking every length against the bytes left
 * and every tensor range against the data section (inside, non-overlapping) before anything is allocated.
 *
 * @example
 * ```ts
 * const gguf = parseGguf(bytes, 'stories260K.gguf');
 * gguf.metadata.get('general.architecture'); // 'llama'
 * ```
 */
export function parseGguf(bytes: Uint8Array, file: string): GgufFile {
  const r = new BinaryReader(bytes, file);
  const magic = r.u32('magic');
  if (magic !== 0x46554747) r.fail('not a GGUF file (bad magic)');
  const version = r.u32('version');
  if (version !== 2 && version !== 3) throw new UnsupportedError(`${file}: GGUF version ${version}; kvt reads versions 2 and 3.`);
  const tensorCount = r.u64('tensor count');
  const kvCount = r.u64('metadata count');
  // each tensor info takes ≥ 24 bytes, each key-value ≥ 12: check the counts before looping
  if (tensorCount * 24 > r.remaining || kvCount * 12 > r.remaining) r.fail('tensor or metadata counts exceed the file size');
  const str = (what: string) => r.utf8(r.u64(`${what} length`), what);
  const value = (type: number, what: string, depth: number): GgufValue => {
    switch (type) {
      case 0: return r.u8(what);
      case 1: return (r.u8(what) << 24) >> 24;
      case 2: return r.u16(what);
      case 3: return (r.u16(what) << 16) >> 16;
      case 4: return r.u32(what);
      case 5: return r.i32(what);
      case 6: return r.f32(what);
      case 7: return r.u8(what) !== 0;
      case 8: return str(what);
      case 9: {
        if (depth > 2) r.fail(`${what}: arrays nested too deeply`);
        const t = r.u32(`${what} element type`);
        const n = r.u64(`${what} element count`);
        if (n > r.remaining) r.fail(`${what}: ${n} elements cannot fit in the ${r.remaining} bytes left`);
        const out: GgufValue[] = [];
        for (let i = 0; i < n; i++) out.push(value(t, what, depth + 1));
        return out;
      }
      case 10: return r.u64(what);
      case 11: return r.i64(what);
      case 12: return r.f64(what);
      default:
        return r.fail(`${what} has unknown metadata type ${type}`);
    }
  };
  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < kvCount; i++) {
    const key = str(`metadata key ${i}`);
    metadata.set(key, value(r.u32(`type of ${key}`), key, 0));
  }
  const infos: Omit<GgufTensorInfo, 'byteLength'>[] = [];
  for (let i = 0; i < tensorCount; i++) {
    const name = str(`tensor ${i} name`);
    const nDims = r.u32(`${name} dims`);
    if (nDims < 1 || nDims > 4) r.fail(`tensor ${name} has ${nDims} dimensions (1 to 4 allowed)`);
    const dims: number[] = [];
    for (let k = 0; k < nDims; k++) dims.push(r.u64(`${name} dim ${k}`));
    infos.push({ name, dims, type: r.u32(`${name} type`), offset: r.u64(`${name} offset`) });
  }
  const alignment = Number(metadata.get('general.alignment') ?? 32);
  if (!Number.isInteger(alignment) || alignment < 1 || alignment > 1 << 20 || (alignment & (alignment - 1)) !== 0)
    r.fail(`general.alignment ${alignment} is not a power of two`);
  const dataOffset = Math.ceil(r.offset / alignment) * alignment;
  if (dataOffset > bytes.byteLength) r.fail('the data section starts past the end of the file');
  const dataSize = bytes.byteLength - dataOffset;
  const tensors = infos.map((t) => ({
    ...t,
    byteLength: tensorBytes(t.type, elementCount(t.dims, file, `tensor ${t.name}`), t.name, file),
  }));
  checkRanges(tensors.map((t) => ({ name: t.name, start: t.offset, end: t.offset + t.byteLength })), dataSize, file);
  return { version, metadata, tensors, dataOffset, bytes, file };
}

/** A tensor's values as float32, in PyTorch order (dims reversed from ggml's): `[dims[n-1], …, dims[0]]`. */
export function readGgufTensor(g: GgufFile, t: GgufTensorInfo): HostTensor {
  const raw = g.bytes.subarray(g.dataOffset + t.offset, g.dataOffset + t.offset + t.byteLength);
  const shape = [...t.dims].reverse();
  switch (t.type) {
    case GGML.F32:
      return hostTensor(float32From(raw), shape);
    case GGML.F16:
      return hostTensor(float16ToFloat32(raw), shape);
    case GGML.BF16:
      return hostTensor(bfloat16ToFloat32(raw), shape);
    default: {
      const q = quantizedTensor(g, t, false)!;
      return hostTensor(dequantizeRows(q.bytes, q.rows, q.cols, q.format), shape);
    }
  }
}

/**
 * A 2-D Q8_0, Q4_0, Q4_K or F16 tensor as stored (rows `dims[1]` of `dims[0]` values; `transposed`: kvt holds the
 * parameter as the transpose, a Linear weight `[in, out]`), or undefined for other types and F16 rows that are not
 * blocks of 32.
 */
export function quantizedTensor(g: GgufFile, t: GgufTensorInfo, transposed: boolean): QuantizedHostTensor | undefined {
  if (t.type === GGML.F16 && t.dims.length <= 2 && t.dims[0]! % 32 === 0) {
    const bytes = g.bytes.subarray(g.dataOffset + t.offset, g.dataOffset + t.offset + t.byteLength);
    return { format: 'fp16', bytes, rows: t.dims[1] ?? 1, cols: t.dims[0]!, transposed };
  }
  const format = QUANTIZED[t.type];
  if (!format) return undefined;
  if (t.dims.length > 2 || t.dims.slice(2).some((d) => d !== 1)) throw new ModelFormatError(g.file, `quantized tensor ${t.name} is not 2-D`);
  if (t.dims[0]! % blockValues(format) !== 0)
    throw new ModelFormatError(g.file, `${TYPE_NAMES[t.type]} tensor ${t.name} has rows of ${t.dims[0]} values, not whole blocks of ${blockValues(format)}`);
  const bytes = g.bytes.subarray(g.dataOffset + t.offset, g.dataOffset + t.offset + t.byteLength);
  return { format, bytes, rows: t.dims[1] ?? 1, cols: t.dims[0]!, transposed };
}

function meta(g: GgufFile, key: string, kind: 'number' | 'string'): number | string {
  const v = g.metadata.get(key);
  if (v === undefined) throw new ModelFormatError(g.file, `metadata ${key} is missing`);
  if (kind === 'number' && typeof v !== 'number') throw new ModelFormatError(g.file, `metadata ${key} is not a number`);
  if (kind === 'string' && typeof v !== 'string') throw new ModelFormatError(g.file, `metadata ${key} is not a string`);
  return v as number | string;
}

/**
 * A Llama from GGUF (`general.architecture = llama`): config from metadata, tensors dequantized to float32 and put in
 * kvt's layout. GGUF's Q/K weights already suit interleaved rotary positions (llama.cpp permutes them on conversion).
 */
export function llamaFromGguf(g: GgufFile): ParsedCheckpoint<LlamaConfig> {
  const arch = meta(g, 'general.architecture', 'string');
  if (arch !== 'llama') throw new UnsupportedError(`${g.file}: architecture "${arch}"; kvt reads GGUF models of architecture llama.`);
  const num = (k: string) => {
    const v = meta(g, k, 'number') as number;
    if (!Number.isInteger(v) || v <= 0 || v > 1 << 24) throw new ModelFormatError(g.file, `metadata ${k} = ${v} is not a plausible size`);
    return v;
  };
  const d = num('llama.embedding_length');
  const H = num('llama.attention.head_count');
  const KV = g.metadata.has('llama.attention.head_count_kv') ? num('llama.attention.head_count_kv') : H;
  const L = num('llama.block_count');
  const F = num('llama.feed_forward_length');
  const S = num('llama.context_length');
  const byName = new Map(g.tensors.map((t) => [t.name, t]));
  if (byName.has(`blk.${L}.attn_norm.weight`))
    throw new ModelFormatError(g.file, `llama.block_count is ${L}, but the file holds a block ${L} (blk.${L}.attn_norm.weight); fix the metadata`);
  const emb = byName.get('token_embd.weight');
  if (!emb) throw new ModelFormatError(g.file, 'tensor token_embd.weight is missing');
  const V = emb.dims[1] ?? 0;
  const params = new ParameterSet(g.file);
  const get = (name: string) => {
    const t = byName.get(name);
    if (!t) throw new ModelFormatError(g.file, `tensor ${name} is missing`);
    return readGgufTensor(g, t);
  };
  /** A weight in kvt's layout: quantized and F16 tensors are kept as stored (rows), others read as float32. */
  const put = (kvt: string, name: string, asLinear: boolean) => {
    const t = byName.get(name);
    if (!t) throw new ModelFormatError(g.file, `tensor ${name} is missing`);
    const q = quantizedTensor(g, t, asLinear);
    if (q) return void params.setQuantized(kvt, q);
    const h = readGgufTensor(g, t);
    if (asLinear && h.shape.length !== 2) throw new ModelFormatError(g.file, `tensor ${name} is not 2-D`);
    params.set(kvt, asLinear ? transpose2d(h) : h); // linear: [out, in] → [in, out]
  };
  put('embedding', 'token_embd.weight', false);
  for (let i = 0; i < L; i++) {
    params.set(`layers.${i}.attentionNorm`, get(`blk.${i}.attn_norm.weight`));
    put(`layers.${i}.q`, `blk.${i}.attn_q.weight`, true);
    put(`layers.${i}.k`, `blk.${i}.attn_k.weight`, true);
    put(`layers.${i}.v`, `blk.${i}.attn_v.weight`, true);
    put(`layers.${i}.o`, `blk.${i}.attn_output.weight`, true);
    params.set(`layers.${i}.ffnNorm`, get(`blk.${i}.ffn_norm.weight`));
    put(`layers.${i}.gate`, `blk.${i}.ffn_gate.weight`, true);
    put(`layers.${i}.up`, `blk.${i}.ffn_up.weight`, true);
    put(`layers.${i}.down`, `blk.${i}.ffn_down.weight`, true);
  }
  params.set('finalNorm', get('output_norm.weight'));
  if (byName.has('output.weight')) put('output', 'output.weight', true);
  const eps = g.metadata.get('llama.attention.layer_norm_rms_epsilon');
  const theta = g.metadata.get('llama.rope.freq_base');
  const bos = g.metadata.get('tokenizer.ggml.bos_token_id');
  const eos = g.metadata.get('tokenizer.ggml.eos_token_id');
  const config: LlamaConfig = {
    architecture: 'llama',
    vocabSize: V,
    hiddenSize: d,
    intermediateSize: F,
    numLayers: L,
    numHeads: H,
    numKvHeads: KV,
    maxPositions: S,
    normEpsilon: typeof eps === 'number' ? eps : 1e-5,
    ropeTheta: typeof theta === 'number' ? theta : 10000,
    ropeStyle: 'interleaved',
    specialTokens: {
      ...(typeof bos === 'number' ? { bos } : {}),
      eos: [...new Set([typeof eos === 'number' ? eos : 2, ...(typeof bos === 'number' ? [bos] : [])])],
    },
  };
  return { config, params };
}

/** The SentencePiece-style tokenizer in GGUF metadata (`tokenizer.ggml.model = llama`). */
export function tokenizerFromGguf(g: GgufFile): ScoreBpeTokenizer {
  const model = g.metadata.get('tokenizer.ggml.model');
  if (model !== 'llama')
    throw new UnsupportedError(`${g.file}: tokenizer model "${String(model)}"; kvt reads GGUF tokenizers of model llama (SentencePiece).`);
  const tokens = g.metadata.get('tokenizer.ggml.tokens');
  const scores = g.metadata.get('tokenizer.ggml.scores');
  if (!Array.isArray(tokens) || tokens.some((t) => typeof t !== 'string'))
    throw new ModelFormatError(g.file, 'tokenizer.ggml.tokens is missing or not a list of strings');
  if (!Array.isArray(scores) || scores.length !== tokens.length || scores.some((s) => typeof s !== 'number'))
    throw new ModelFormatError(g.file, 'tokenizer.ggml.scores is missing or does not match the tokens');
  const types = g.metadata.get('tokenizer.ggml.token_type');
  const num = (k: string) => (typeof g.metadata.get(k) === 'number' ? (g.metadata.get(k) as number) : undefined);
  const bos = num('tokenizer.ggml.bos_token_id');
  const eos = num('tokenizer.ggml.eos_token_id');
  const unk = num('tokenizer.ggml.unknown_token_id');
  const pieces = tokens as string[];
  const control = Array.isArray(types) ? types.flatMap((t, i) => (t === 3 || t === 2 ? [i] : [])) : [];
  const addBos = g.metadata.get('tokenizer.ggml.add_bos_token');
  const addSpace = g.metadata.get('tokenizer.ggml.add_space_prefix');
  return new ScoreBpeTokenizer({
    pieces,
    scores: Float32Array.from(scores as number[]),
    spaceSymbol: '\u2581',
    ...(pieces.indexOf('<0x00>') >= 0 ? { byteFallbackStart: pieces.indexOf('<0x00>') } : {}),
    ...(bos !== undefined ? { bos } : {}),
    ...(eos !== undefined ? { eos } : {}),
    ...(unk !== undefined ? { unk } : {}),
    specialIds: [...new Set([...control, ...[bos, eos, unk].filter((x): x is number => x !== undefined)])],
    addBos: addBos === undefined ? true : addBos === true,
    addPrefixSpace: addSpace === undefined ? true : addSpace === true,
  });
}
