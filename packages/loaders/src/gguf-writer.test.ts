/**
 * kvt's GGUF writer (`llamaToGguf`, what `kvt quantize` writes), read back by an independent GGUF reader written
 * here from the GGUF spec, compared with llama.cpp's own conversion of stories260K (the fixture), and loaded by kvt.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { generate, type DecoderOnlyModel } from '@kvt/core';
import { LlamaModel, randomLlamaParameters, transpose2d, type LlamaConfig } from '@kvt/models';
import { dequantizedLlamaParameters } from '@kvt/models/testing';
import '@tensorflow/tfjs-backend-cpu';
import { fromHuggingFace, llamaToGguf, loadModel, parseLlama2cCheckpoint, parseLlama2cTokenizer, writeSafetensors } from './index.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const fixtures = process.env.KVT_FIXTURES ?? join(repo, '..', 'shared', 'fixtures');
const stories = join(fixtures, 'stories260K', 'stories260K.bin');
const tok512 = join(fixtures, 'stories260K', 'tok512.bin');
const llamaCppGguf = join(fixtures, 'stories260K-gguf', 'stories260K.gguf');

// ---- an independent GGUF reader (GGUF spec v3: little-endian, u64 counts and lengths, alignment 32 by default)
interface Tensor {
  name: string;
  dims: number[];
  type: number;
  offset: number;
}
interface Read {
  meta: Map<string, unknown>;
  tensors: Tensor[];
  dataStart: number;
  bytes: Uint8Array;
}
function readGguf(bytes: Uint8Array): Read {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const u32 = () => ((at += 4), v.getUint32(at - 4, true));
  const u64 = () => ((at += 8), Number(v.getBigUint64(at - 8, true)));
  const str = () => {
    const n = u64();
    at += n;
    return new TextDecoder().decode(bytes.subarray(at - n, at));
  };
  const value = (type: number): unknown => {
    switch (type) {
      case 4: return u32();
      case 5: return ((at += 4), v.getInt32(at - 4, true));
      case 6: return ((at += 4), v.getFloat32(at - 4, true));
      case 7: return ((at += 1), bytes[at - 1] !== 0);
      case 8: return str();
      case 9: {
        const t = u32();
        return Array.from({ length: u64() }, () => value(t));
      }
      default: throw new Error(`metadata type ${type} not expected from kvt's writer`);
    }
  };
  expect(u32()).toBe(0x46554747);
  expect(u32()).toBe(3);
  const nTensors = u64();
  const nMeta = u64();
  const meta = new Map<string, unknown>();
  for (let i = 0; i < nMeta; i++) {
    const k = str();
    meta.set(k, value(u32()));
  }
  const tensors = Array.from({ length: nTensors }, () => {
    const name = str();
    const dims = Array.from({ length: u32() }, () => u64());
    return { name, dims, type: u32(), offset: u64() };
  });
  const alignment = (meta.get('general.alignment') as number | undefined) ?? 32;
  return { meta, tensors, dataStart: Math.ceil(at / alignment) * alignment, bytes };
}
const half = (h: number) => {
  const e = (h >> 10) & 31;
  const m = h & 1023;
  const x = e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15);
  return h & 0x8000 ? -x : x;
};
/** A Q8_0 (type 8) or Q4_0 (type 2) tensor's values, row-major. */
function dequantize(r: Read, t: Tensor): Float32Array {
  const n = t.dims.reduce((a, b) => a * b, 1);
  const size = t.type === 8 ? 34 : 18;
  const out = new Float32Array(n);
  const base = r.dataStart + t.offset;
  for (let b = 0; b < n / 32; b++) {
    const at = base + b * size;
    const d = half(r.bytes[at]! | (r.bytes[at + 1]! << 8));
    for (let i = 0; i < 32; i++) {
      const q = t.type === 8 ? (r.bytes[at + 2 + i]! << 24) >> 24 : (i < 16 ? r.bytes[at + 2 + i]! & 15 : r.bytes[at + 2 + i - 16]! >> 4) - 8;
      out[b * 32 + i] = d * q;
    }
  }
  return out;
}

describe.skipIf(!existsSync(stories))('the GGUF writer (kvt quantize)', () => {
  beforeAll(async () => {
    tf.env().set('IS_TEST', true);
    await tf.setBackend('cpu'); // tfjs's own: quantized weights are dequantized at load, the same way for both models
  });

  const checkpoint = () => parseLlama2cCheckpoint(readFileSync(stories), 'stories260K.bin');
  const tokenizer = () => parseLlama2cTokenizer(readFileSync(tok512), 'tok512.bin', 512);

  it("writes llama.cpp's layout: the same tensor names, shapes and tokenizer as llama.cpp's stories260K.gguf", () => {
    const { config, params } = checkpoint();
    const ours = readGguf(llamaToGguf(config, params, 'fp32', tokenizer()));
    const theirs = readGguf(new Uint8Array(readFileSync(llamaCppGguf)));
    // llama.cpp's converter also writes output.weight for a tied checkpoint (a copy of token_embd); kvt leaves it out,
    // which llama.cpp reads as tied
    const shapes = (r: Read) => Object.fromEntries(r.tensors.filter((t) => t.name !== 'output.weight').map((t) => [t.name, t.dims]));
    expect(shapes(ours)).toEqual(shapes(theirs));
    expect(ours.tensors.some((t) => t.name === 'output.weight')).toBe(false);
    // context_length: the checkpoint's seq_len (512); llama.cpp's converter wrote its own default (2048)
    expect(ours.meta.get('llama.context_length')).toBe(config.maxPositions);
    for (const key of ['llama.embedding_length', 'llama.block_count', 'llama.feed_forward_length', 'llama.attention.head_count', 'llama.attention.head_count_kv', 'llama.rope.dimension_count', 'tokenizer.ggml.model', 'tokenizer.ggml.token_type', 'tokenizer.ggml.bos_token_id', 'tokenizer.ggml.eos_token_id', 'tokenizer.ggml.unknown_token_id'])
      expect(ours.meta.get(key), key).toEqual(theirs.meta.get(key));
    // the pieces (spaces as ▁), but for the control tokens: tok512.bin spells BOS/EOS "\n<s>\n", "\n</s>\n"; llama.cpp
    // took them from the SentencePiece model
    const pieces = (r: Read) => (r.meta.get('tokenizer.ggml.tokens') as string[]).map((p, i) => (i === 1 || i === 2 ? p.trim() : p));
    expect(pieces(ours)).toEqual(pieces(theirs));
    const scores = (r: Read) => (r.meta.get('tokenizer.ggml.scores') as number[]).map((s) => Math.fround(s));
    expect(scores(ours)).toEqual(scores(theirs));
    // every fp32 tensor holds llama.cpp's values
    for (const t of ours.tensors) {
      const o = theirs.tensors.find((x) => x.name === t.name)!;
      expect(o, t.name).toBeDefined();
      expect(o.type, t.name).toBe(0);
      const n = t.dims.reduce((a, b) => a * b, 1) * 4;
      expect(Buffer.from(ours.bytes.subarray(ours.dataStart + t.offset, ours.dataStart + t.offset + n)).equals(Buffer.from(theirs.bytes.subarray(theirs.dataStart + o.offset, theirs.dataStart + o.offset + n))), t.name).toBe(true);
    }
  });

  for (const format of ['q8_0', 'q4_0'] as const) {
    it(`${format}: an independent reader finds Q blocks within half a step of the weights; kvt loads it and computes what the dequantized weights compute`, async () => {
      const { config, params } = checkpoint();
      const bytes = llamaToGguf(config, params, format, tokenizer());
      const r = readGguf(bytes);
      expect(r.meta.get('general.file_type')).toBe(format === 'q8_0' ? 7 : 2);
      const reference = checkpoint().params;
      let quantizedTensors = 0;
      for (const t of r.tensors) {
        expect(t.offset % 32, `${t.name} aligned`).toBe(0);
        if (t.type === 0) {
          expect(t.dims[0]! % 32 !== 0 || t.dims.length === 1, `${t.name} stays F32 only where rows are not blocks of 32`).toBe(true);
          continue;
        }
        expect(t.type).toBe(format === 'q8_0' ? 8 : 2);
        quantizedTensors++;
        const [inDim, outDim] = t.dims as [number, number];
        const kvt = t.name === 'token_embd.weight' ? 'embedding' : t.name.replace(/^blk\.(\d+)\.(\w+)\.weight$/, (_, i, w) => `layers.${i}.${{ attn_q: 'q', attn_k: 'k', attn_v: 'v', attn_output: 'o', ffn_gate: 'gate', ffn_up: 'up', ffn_down: 'down' }[w as string]}`);
        const want = kvt === 'embedding' ? reference.take('embedding', [outDim, inDim]).data : transpose2d(reference.take(kvt, [inDim, outDim])).data;
        const got = dequantize(r, t);
        // each value within half a step d of its block (Q4_0 maps the largest magnitude to −8·d, so the opposite end
        // clamps at +7·d: up to one step there); plus the fp16 rounding of d
        for (let b = 0; b < got.length / 32; b++) {
          let amax = 0;
          for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(want[b * 32 + i]!));
          const bound = format === 'q8_0' ? (amax / 127) * 0.5 : amax / 8;
          for (let i = 0; i < 32; i++) expect(Math.abs(got[b * 32 + i]! - want[b * 32 + i]!)).toBeLessThanOrEqual(bound + amax * 1e-3 + 1e-7);
        }
      }
      expect(quantizedTensors).toBeGreaterThanOrEqual(1 + 5 * 6);
      // tfjs's cpu backend multiplies float32: the file's blocks are dequantized at load, as the reference's are
      const fromFile = await loadModel({ 'stories260K.gguf': bytes });
      const atLoad = { model: LlamaModel.fromParameters(config, dequantizedLlamaParameters(checkpoint().params, config, format)), dispose() { this.model.dispose(); } };
      try {
        const request = { inputIds: [1, 403, 407, 261, 378], maxNewTokens: 40, stopTokenIds: [] };
        const a = await generate(fromFile.model as DecoderOnlyModel, request);
        const b = await generate(atLoad.model as DecoderOnlyModel, request);
        expect(a.sequences[0]!.tokens).toEqual(b.sequences[0]!.tokens);
        expect(fromFile.tokenizer!.encode('Once upon a time')).toEqual([1, 403, 407, 261, 378]);
        const la = await (fromFile.model as DecoderOnlyModel).forward([[1, 403, 407]], null);
        const lb = await (atLoad.model as DecoderOnlyModel).forward([[1, 403, 407]], null);
        expect(Array.from(la.data)).toEqual(Array.from(lb.data)); // the same quantized bytes: the same logits
      } finally {
        fromFile.dispose();
        atLoad.dispose();
      }
    });
  }

  it("a Hugging Face Llama (rotary halves) gets q/k rows permuted to llama.cpp's pairs: the GGUF computes the same logits", async () => {
    const c: LlamaConfig = { architecture: 'llama', vocabSize: 96, hiddenSize: 64, intermediateSize: 128, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositions: 64, normEpsilon: 1e-5, ropeStyle: 'half', specialTokens: { bos: 1, eos: [2] } };
    const p = randomLlamaParameters(c, 21, { tied: false });
    const hf: Record<string, ReturnType<typeof p.get>> = { 'model.embed_tokens.weight': p.get('embedding'), 'model.norm.weight': p.get('finalNorm'), 'lm_head.weight': transpose2d(p.get('output')) };
    for (let i = 0; i < 2; i++) {
      const pre = `model.layers.${i}`;
      hf[`${pre}.input_layernorm.weight`] = p.get(`layers.${i}.attentionNorm`);
      hf[`${pre}.post_attention_layernorm.weight`] = p.get(`layers.${i}.ffnNorm`);
      for (const [k, n] of [['q', 'self_attn.q_proj'], ['k', 'self_attn.k_proj'], ['v', 'self_attn.v_proj'], ['o', 'self_attn.o_proj'], ['gate', 'mlp.gate_proj'], ['up', 'mlp.up_proj'], ['down', 'mlp.down_proj']])
        hf[`${pre}.${n}.weight`] = transpose2d(p.get(`layers.${i}.${k}`));
    }
    const config = { model_type: 'llama', hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 96, max_position_embeddings: 64, rms_norm_eps: 1e-5, bos_token_id: 1, eos_token_id: 2 };
    const folder = { 'config.json': new TextEncoder().encode(JSON.stringify(config)), 'model.safetensors': writeSafetensors(hf) };
    const arch = fromHuggingFace(config, (n) => hf[n]);
    if (arch.kind !== 'llama') throw new Error('expected llama');
    const gguf = await loadModel({ 'tiny.gguf': llamaToGguf(arch.config, arch.params, 'fp32') });
    const original = await loadModel(folder);
    try {
      const a = await (gguf.model as DecoderOnlyModel).forward([[1, 7, 30, 55, 4]], null, { logits: 'all' });
      const b = await (original.model as DecoderOnlyModel).forward([[1, 7, 30, 55, 4]], null, { logits: 'all' });
      const scale = Math.max(...Array.from(b.data, Math.abs));
      a.data.forEach((x, i) => expect(Math.abs(x - b.data[i]!)).toBeLessThanOrEqual(1e-4 * scale));
    } finally {
      gguf.dispose();
      original.dispose();
    }
  });
});
