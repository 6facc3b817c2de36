import { InvalidOptionError } from '@kvt/core';
import { BLOCK, WEIGHT_FORMATS, blockValues, type WeightFormat } from '@kvt/kernels';
import { quantizeRows, type LlamaConfig, type ParameterSet, type QuantizedHostTensor } from '@kvt/models';
import type { ScoreBpeTokenizer } from '../tokenizers/score-bpe.js';

/** A GGUF metadata entry: key, value type, value. */
export type GgufEntry =
  | readonly [key: string, type: 'u32' | 'i32' | 'f32', value: number]
  | readonly [key: string, type: 'bool', value: boolean]
  | readonly [key: string, type: 'string', value: string]
  | readonly [key: string, type: 'string[]', value: readonly string[]]
  | readonly [key: string, type: 'f32[]' | 'i32[]', value: readonly number[]];

/** A GGUF tensor: `dims` in ggml order (`dims[0]` varies fastest), its data as stored. */
export interface GgufTensorOut {
  readonly name: string;
  readonly dims: readonly number[];
  readonly type: 'F32' | 'F16' | 'Q8_0' | 'Q4_0' | 'Q4_K';
  readonly bytes: Uint8Array;
}

const GGML_TYPE = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8, Q4_K: 12 } as const;
const VALUE_TYPE = { u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9 } as const;
const ALIGNMENT = 32;

/**
 * Writes a GGUF v3 file: the metadata, the tensor infos, then each tensor's data at an offset aligned to 32 bytes
 * (GGUF's default `general.alignment`).
 *
 * @example
 * ```ts
 * const bytes = writeGguf([['general.architecture', 'string', 'llama']], [{ name: 'output_norm.weight', dims: [64], type: 'F32', bytes }]);
 * ```
 */
export function writeGguf(metadata: readonly GgufEntry[], tensors: readonly GgufTensorOut[]): Uint8Array {
  const head: number[] = [];
  const u8 = (v: number) => head.push(v & 0xff);
  const u32 = (v: number) => [0, 8, 16, 24].forEach((s) => u8(v >>> s));
  const u64 = (v: number) => (u32(v % 2 ** 32), u32(Math.floor(v / 2 ** 32)));
  const f32 = (v: number) => new Uint8Array(Float32Array.of(v).buffer).forEach(u8);
  const str = (v: string) => {
    const b = new TextEncoder().encode(v);
    u64(b.length);
    b.forEach(u8);
  };
  u32(0x46554747); // "GGUF"
  u32(3);
  u64(tensors.length);
  u64(metadata.length);
  for (const [key, type, value] of metadata) {
    str(key);
    if (type.endsWith('[]')) {
      const element = type.slice(0, -2) as 'string' | 'f32' | 'i32';
      const values = value as readonly (string | number)[];
      u32(VALUE_TYPE.array);
      u32(VALUE_TYPE[element]);
      u64(values.length);
      for (const v of values) element === 'string' ? str(v as string) : element === 'f32' ? f32(v as number) : u32(v as number);
      continue;
    }
    u32(VALUE_TYPE[type as 'u32' | 'i32' | 'f32' | 'bool' | 'string']);
    if (type === 'string') str(value as string);
    else if (type === 'bool') u8(value ? 1 : 0);
    else if (type === 'f32') f32(value as number);
    else u32(value as number);
  }
  let offset = 0;
  const offsets = tensors.map((t) => {
    const at = offset;
    offset = Math.ceil((offset + t.bytes.byteLength) / ALIGNMENT) * ALIGNMENT;
    return at;
  });
  tensors.forEach((t, i) => {
    str(t.name);
    u32(t.dims.length);
    t.dims.forEach(u64);
    u32(GGML_TYPE[t.type]);
    u64(offsets[i]!);
  });
  const dataStart = Math.ceil(head.length / ALIGNMENT) * ALIGNMENT;
  const out = new Uint8Array(dataStart + offset);
  out.set(head);
  tensors.forEach((t, i) => out.set(t.bytes, dataStart + offsets[i]!));
  return out;
}

/** ggml's LLAMA_FTYPE of a file whose matrices are in `format`. */
// llama.cpp's llama_ftype: ALL_F32, MOSTLY_F16, MOSTLY_Q4_0, MOSTLY_Q8_0, MOSTLY_Q4_K_S
const FILE_TYPE: Record<WeightFormat, number> = { fp32: 0, fp16: 1, q4_0: 2, q8_0: 7, q4_k: 14 };
/** The ggml tensor type of each stored format. */
const TENSOR_TYPE = { fp16: 'F16', q8_0: 'Q8_0', q4_0: 'Q4_0', q4_k: 'Q4_K' } as const;

/**
 * A Llama model's parameters (kvt's layout, e.g. from `parseLlama2cCheckpoint`, `llamaFromGguf` or a Hugging Face
 * folder) as a GGUF file in llama.cpp's layout: `llama.*` hyperparameters, `token_embd` / `blk.N.*` / `output*`
 * tensors with matrices as rows `[out, in]` in `format` (F32, F16, Q8_0, Q4_0, Q4_K; rows whose length is not a
 * multiple of 32 stay F32, Q4_K rows that are not a multiple of 256 are written Q4_0; the norms are F32), and the SentencePiece-style tokenizer (`tokenizer.ggml.*`) when given. Checkpoints with rotary
 * halves (`ropeStyle: 'half'`, Hugging Face) get their q/k rows permuted to llama.cpp's interleaved pairs, as its
 * converter does. kvt's GGUF loader and llama.cpp read the result.
 *
 * @example
 * ```ts
 * const { config, params } = parseLlama2cCheckpoint(bytes, 'stories260K.bin');
 * const gguf = llamaToGguf(config, params, 'q8_0', tokenizer);
 * ```
 */
export function llamaToGguf(config: LlamaConfig, params: ParameterSet, format: WeightFormat, tokenizer?: ScoreBpeTokenizer): Uint8Array {
  if (!WEIGHT_FORMATS.includes(format)) throw new InvalidOptionError('weights', format, `one of ${WEIGHT_FORMATS.join(', ')}`);
  const c = config;
  const d = c.hiddenSize;
  const hd = c.headDim ?? d / c.numHeads;
  const tensors: GgufTensorOut[] = [];
  const vector = (name: string, kvt: string, n: number) =>
    tensors.push({ name, dims: [n], type: 'F32', bytes: new Uint8Array(params.take(kvt, [n]).data.slice().buffer) });
  /** rows [out, in] (row-major) in the file's format */
  const rows = (name: string, data: Float32Array, out: number, inDim: number) => {
    const f = format === 'q4_k' && inDim % blockValues('q4_k') !== 0 ? 'q4_0' : format;
    if (f === 'fp32' || inDim % BLOCK !== 0) tensors.push({ name, dims: [inDim, out], type: 'F32', bytes: new Uint8Array(data.slice().buffer) });
    else tensors.push({ name, dims: [inDim, out], type: TENSOR_TYPE[f], bytes: quantizeRows(data, out, inDim, f) });
  };
  /** A linear weight `[in, out]` in kvt's layout, written as its rows; `heads`: permute rotary halves to pairs. */
  const linear = (name: string, kvt: string, inDim: number, out: number, heads?: number) => {
    const stored = params.quantized(kvt);
    if (stored && stored.format === format && stored.transposed && heads === undefined) return void tensors.push(asStored(name, stored));
    let data = params.takeTransposed(kvt, [inDim, out]).data;
    if (heads !== undefined && c.ropeStyle === 'half') data = halvesToPairs(data, heads, out / heads, inDim);
    rows(name, data, out, inDim);
  };
  const V = c.vocabSize;
  const embedding = params.quantized('embedding');
  if (embedding && embedding.format === format && !embedding.transposed) tensors.push(asStored('token_embd.weight', embedding));
  else rows('token_embd.weight', params.take('embedding', [V, d]).data, V, d);
  for (let i = 0; i < c.numLayers; i++) {
    const L = `layers.${i}`;
    vector(`blk.${i}.attn_norm.weight`, `${L}.attentionNorm`, d);
    linear(`blk.${i}.attn_q.weight`, `${L}.q`, d, c.numHeads * hd, c.numHeads);
    linear(`blk.${i}.attn_k.weight`, `${L}.k`, d, c.numKvHeads * hd, c.numKvHeads);
    linear(`blk.${i}.attn_v.weight`, `${L}.v`, d, c.numKvHeads * hd);
    linear(`blk.${i}.attn_output.weight`, `${L}.o`, c.numHeads * hd, d);
    vector(`blk.${i}.ffn_norm.weight`, `${L}.ffnNorm`, d);
    linear(`blk.${i}.ffn_gate.weight`, `${L}.gate`, d, c.intermediateSize);
    linear(`blk.${i}.ffn_up.weight`, `${L}.up`, d, c.intermediateSize);
    linear(`blk.${i}.ffn_down.weight`, `${L}.down`, c.intermediateSize, d);
  }
  vector('output_norm.weight', 'finalNorm', d);
  if (params.has('output')) linear('output.weight', 'output', d, V);
  const eos = c.specialTokens.eos.find((t) => t !== c.specialTokens.bos) ?? c.specialTokens.eos[0];
  const metadata: GgufEntry[] = [
    ['general.architecture', 'string', 'llama'],
    ['general.name', 'string', params.source],
    ['general.file_type', 'u32', FILE_TYPE[format]],
    ['llama.vocab_size', 'u32', V],
    ['llama.context_length', 'u32', c.maxPositions],
    ['llama.embedding_length', 'u32', d],
    ['llama.block_count', 'u32', c.numLayers],
    ['llama.feed_forward_length', 'u32', c.intermediateSize],
    ['llama.attention.head_count', 'u32', c.numHeads],
    ['llama.attention.head_count_kv', 'u32', c.numKvHeads],
    ['llama.attention.layer_norm_rms_epsilon', 'f32', c.normEpsilon ?? 1e-5],
    ['llama.rope.freq_base', 'f32', c.ropeTheta ?? 10000],
    ['llama.rope.dimension_count', 'u32', hd],
    ...(c.specialTokens.bos !== undefined ? ([['tokenizer.ggml.bos_token_id', 'u32', c.specialTokens.bos]] as const) : []),
    ...(eos !== undefined ? ([['tokenizer.ggml.eos_token_id', 'u32', eos]] as const) : []),
    ...(tokenizer ? tokenizerEntries(tokenizer) : []),
  ];
  return writeGguf(metadata, tensors);
}

function asStored(name: string, q: QuantizedHostTensor): GgufTensorOut {
  return { name, dims: [q.cols, q.rows], type: TENSOR_TYPE[q.format], bytes: q.bytes };
}

/**
 * Rows `[heads · hd, in]` with each head's rotary dimensions as halves (x₀…x_{hd/2−1}, then their partners) → as
 * interleaved pairs (x₀, partner₀, x₁, partner₁, …): llama.cpp's `permute` in convert_hf_to_gguf.py.
 */
function halvesToPairs(data: Float32Array, heads: number, hd: number, inDim: number): Float32Array {
  const out = new Float32Array(data.length);
  const half = hd / 2;
  for (let h = 0; h < heads; h++)
    for (let j = 0; j < half; j++)
      for (let s = 0; s < 2; s++) {
        const from = (h * hd + s * half + j) * inDim;
        out.set(data.subarray(from, from + inDim), (h * hd + 2 * j + s) * inDim);
      }
  return out;
}

/** `tokenizer.ggml.*` entries of a SentencePiece-style tokenizer (`tokenizer.ggml.model = llama`). */
function tokenizerEntries(t: ScoreBpeTokenizer): GgufEntry[] {
  const { pieces, scores, specialIds, unk, byteFallbackStart, addBos, addPrefixSpace } = t.describe();
  const special = new Set(specialIds);
  // llama.cpp's token types: 1 normal, 2 unknown, 3 control, 6 byte
  const types = pieces.map((_, i) => (i === unk ? 2 : special.has(i) ? 3 : byteFallbackStart !== undefined && i >= byteFallbackStart && i < byteFallbackStart + 256 ? 6 : 1));
  return [
    ['tokenizer.ggml.model', 'string', 'llama'],
    ['tokenizer.ggml.tokens', 'string[]', pieces],
    ['tokenizer.ggml.scores', 'f32[]', Array.from(scores)],
    ['tokenizer.ggml.token_type', 'i32[]', types],
    ...(unk !== undefined ? ([['tokenizer.ggml.unknown_token_id', 'u32', unk]] as const) : []),
    ['tokenizer.ggml.add_bos_token', 'bool', addBos],
    ['tokenizer.ggml.add_space_prefix', 'bool', addPrefixSpace],
  ];
}
