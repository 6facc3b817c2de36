/**
 * GGUF F16, Q8_0, Q4_0 and Q4_K tensors: a tiny Llama written as GGUF by this test (an independent writer), loaded by kvt, must
 * generate what the same weights — rounded or quantized here, independently — generate when built in memory.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { generate, type DecoderOnlyModel } from '@kvt/core';
import { LlamaModel, ParameterSet, randomLlamaParameters, transpose2d, type HostTensor, type LlamaConfig } from '@kvt/models';
import { loadModel } from './index.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** float → IEEE half bits, round to nearest even (normal range only, enough for weights). */
function toHalf(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = ((b >>> 23) & 0xff) - 112;
  if (exp <= 0) return sign; // tiny values flush to zero
  let mant = b & 0x7fffff;
  let h = sign | (exp << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h++;
  return h;
}
function fromHalf(h: number): number {
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  const v = e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15);
  return h & 0x8000 ? -v : v;
}

type Kind = 'F16' | 'Q8_0' | 'Q4_0' | 'Q4_K';
/** Encodes values (row-major, rows of `cols`) and returns the bytes and what they decode to. */
function encode(data: Float32Array, kind: Kind): { bytes: Uint8Array; decoded: Float32Array } {
  const decoded = new Float32Array(data.length);
  if (kind === 'F16') {
    const bytes = new Uint8Array(data.length * 2);
    const v = new DataView(bytes.buffer);
    data.forEach((x, i) => {
      const h = toHalf(x);
      v.setUint16(2 * i, h, true);
      decoded[i] = fromHalf(h);
    });
    return { bytes, decoded };
  }
  if (kind === 'Q4_K') return encodeQ4K(data);
  const blocks = data.length / 32;
  if (kind === 'Q4_0') {
    // llama.cpp's quantize_row_q4_0_ref: d = (value of largest magnitude) / −8, q = min(15, (int)(x / d + 8.5))
    const bytes = new Uint8Array(blocks * 18);
    const v = new DataView(bytes.buffer);
    for (let b = 0; b < blocks; b++) {
      let max = 0;
      for (let i = 0; i < 32; i++) if (Math.abs(data[b * 32 + i]!) > Math.abs(max)) max = data[b * 32 + i]!;
      const d = Math.fround(max / -8);
      const id = d ? Math.fround(1 / d) : 0;
      const h = toHalf(d);
      v.setUint16(b * 18, h, true);
      const q = Array.from({ length: 32 }, (_, i) => Math.min(15, Math.trunc(Math.fround(Math.fround(data[b * 32 + i]! * id) + 8.5))));
      for (let j = 0; j < 16; j++) bytes[b * 18 + 2 + j] = q[j]! | (q[j + 16]! << 4);
      q.forEach((x, i) => (decoded[b * 32 + i] = (x - 8) * fromHalf(h)));
    }
    return { bytes, decoded };
  }
  const bytes = new Uint8Array(blocks * 34);
  const v = new DataView(bytes.buffer);
  for (let b = 0; b < blocks; b++) {
    let amax = 0;
    for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(data[b * 32 + i]!));
    const h = toHalf(amax / 127);
    const d = fromHalf(h);
    v.setUint16(b * 34, h, true);
    for (let i = 0; i < 32; i++) {
      const q = d === 0 ? 0 : Math.max(-127, Math.min(127, Math.round(data[b * 32 + i]! / d)));
      v.setInt8(b * 34 + 2 + i, q);
      decoded[b * 32 + i] = q * d;
    }
  }
  return { bytes, decoded };
}

/**
 * Q4_K as GGUF specifies it (144 bytes per 256 values: fp16 d, fp16 dmin, eight 6-bit scales and mins packed in 12
 * bytes, 128 bytes of nibbles; value = d·scale·q − dmin·min), with this test's own rule: each sub-block of 32 covers
 * [min(0, lo), hi] with scale and min rounded up to whole steps of d and dmin.
 */
function encodeQ4K(data: Float32Array): { bytes: Uint8Array; decoded: Float32Array } {
  const supers = data.length / 256;
  const bytes = new Uint8Array(supers * 144);
  const decoded = new Float32Array(data.length);
  for (let s = 0; s < supers; s++) {
    const x = data.subarray(s * 256, (s + 1) * 256);
    const lo = Array.from({ length: 8 }, (_, j) => Math.min(0, ...x.subarray(32 * j, 32 * j + 32)));
    const range = Array.from({ length: 8 }, (_, j) => Math.max(...x.subarray(32 * j, 32 * j + 32)) - lo[j]!);
    const dh = toHalf(Math.max(...range) / 15 / 63);
    const mh = toHalf(Math.max(...lo.map((v) => -v)) / 63);
    const d = fromHalf(dh);
    const dmin = fromHalf(mh);
    const scale = range.map((r) => (d ? Math.min(63, Math.ceil(r / 15 / d)) : 0));
    const min = lo.map((v) => (dmin ? Math.min(63, Math.ceil(-v / dmin)) : 0));
    const at = s * 144;
    new DataView(bytes.buffer).setUint16(at, dh, true);
    new DataView(bytes.buffer).setUint16(at + 2, mh, true);
    // scales and mins of sub-blocks 0…3 in the low 6 bits of bytes 0…3 and 4…7; of 4…7 as nibbles of bytes 8…11,
    // their top two bits in the high bits of bytes 0…3 (scales) and 4…7 (mins)
    for (let j = 0; j < 4; j++) {
      bytes[at + 4 + j] = scale[j]! | ((scale[j + 4]! >> 4) << 6);
      bytes[at + 8 + j] = min[j]! | ((min[j + 4]! >> 4) << 6);
      bytes[at + 12 + j] = (scale[j + 4]! & 15) | ((min[j + 4]! & 15) << 4);
    }
    for (let j = 0; j < 8; j++) {
      const step = Math.fround(d * scale[j]!);
      const offset = Math.fround(dmin * min[j]!);
      for (let k = 0; k < 32; k++) {
        const q = step ? Math.max(0, Math.min(15, Math.round((x[32 * j + k]! + offset) / step))) : 0;
        bytes[at + 16 + 32 * (j >> 1) + k]! |= j % 2 ? q << 4 : q;
        decoded[s * 256 + 32 * j + k] = Math.fround(Math.fround(step * q) - offset);
      }
    }
  }
  return { bytes, decoded };
}

/** A minimal GGUF v3 writer: string/u32/f32 metadata, tensors F32 (type 0), F16 (1), Q4_0 (2), Q8_0 (8), Q4_K (12). */
function writeGguf(meta: [string, 'u32' | 'f32' | 'str', number | string][], tensors: { name: string; dims: number[]; type: number; bytes: Uint8Array }[]): Uint8Array {
  const parts: number[] = [];
  const u8 = (x: number) => parts.push(x & 0xff);
  const u32w = (x: number) => [0, 8, 16, 24].forEach((s) => u8(x >>> s));
  const u64 = (x: number) => (u32w(x), u32w(Math.floor(x / 2 ** 32)));
  const str = (s: string) => {
    const b = new TextEncoder().encode(s);
    u64(b.length);
    b.forEach(u8);
  };
  u32w(0x46554747);
  u32w(3);
  u64(tensors.length);
  u64(meta.length);
  for (const [k, t, v] of meta) {
    str(k);
    if (t === 'u32') (u32w(4), u32w(v as number));
    else if (t === 'f32') {
      u32w(6);
      f32[0] = v as number;
      u32w(u32[0]!);
    } else (u32w(8), str(v as string));
  }
  let offset = 0;
  const placed = tensors.map((t) => {
    const at = offset;
    offset += Math.ceil(t.bytes.length / 32) * 32;
    return at;
  });
  tensors.forEach((t, i) => {
    str(t.name);
    u32w(t.dims.length);
    t.dims.forEach(u64);
    u32w(t.type);
    u64(placed[i]!);
  });
  while (parts.length % 32) u8(0);
  const out = new Uint8Array(parts.length + offset);
  out.set(parts);
  tensors.forEach((t, i) => out.set(t.bytes, parts.length + placed[i]!));
  return out;
}

describe('GGUF with F16, Q8_0, Q4_0 and Q4_K tensors', () => {
  beforeAll(async () => {
    tf.env().set('IS_TEST', true);
    await tf.setBackend('cpu');
  });

  for (const kind of ['F16', 'Q8_0', 'Q4_0', 'Q4_K'] as const) {
    it(`loads ${kind} weights and generates like the same ${kind === 'F16' ? 'rounded' : 'dequantized'} weights in memory`, async () => {
      // Q4_K rows hold whole super-blocks of 256
      const [d, F] = kind === 'Q4_K' ? [256, 512] : [64, 96];
      const c: LlamaConfig = { architecture: 'llama', vocabSize: 64, hiddenSize: d, intermediateSize: F, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositions: 64, normEpsilon: 1e-5, specialTokens: { bos: 1, eos: [2] } };
      const p = randomLlamaParameters(c, 9, { tied: false });
      const memory = new ParameterSet('expected');
      const tensors: { name: string; dims: number[]; type: number; bytes: Uint8Array }[] = [];
      // ggml stores [out, in] matrices with dims [in, out]; norms stay F32 as llama.cpp keeps them
      const put = (gguf: string, kvt: string, linear: boolean, quantize: boolean) => {
        const t = p.get(kvt);
        const stored: HostTensor = linear ? transpose2d(t) : t; // [out, in]
        const enc = quantize ? encode(stored.data, kind) : { bytes: new Uint8Array(stored.data.slice().buffer), decoded: stored.data };
        tensors.push({ name: gguf, dims: [...stored.shape].reverse(), type: quantize ? { F16: 1, Q4_0: 2, Q8_0: 8, Q4_K: 12 }[kind] : 0, bytes: enc.bytes });
        const back: HostTensor = { data: enc.decoded, shape: stored.shape };
        memory.set(kvt, linear ? transpose2d(back) : back);
      };
      put('token_embd.weight', 'embedding', false, true);
      for (let i = 0; i < 2; i++) {
        put(`blk.${i}.attn_norm.weight`, `layers.${i}.attentionNorm`, false, false);
        put(`blk.${i}.ffn_norm.weight`, `layers.${i}.ffnNorm`, false, false);
        for (const [g, k] of [['attn_q', 'q'], ['attn_k', 'k'], ['attn_v', 'v'], ['attn_output', 'o'], ['ffn_gate', 'gate'], ['ffn_up', 'up'], ['ffn_down', 'down']])
          put(`blk.${i}.${g}.weight`, `layers.${i}.${k}`, true, true);
      }
      put('output_norm.weight', 'finalNorm', false, false);
      put('output.weight', 'output', true, true);
      const bytes = writeGguf(
        [
          ['general.architecture', 'str', 'llama'],
          ['llama.embedding_length', 'u32', d],
          ['llama.feed_forward_length', 'u32', F],
          ['llama.block_count', 'u32', 2],
          ['llama.attention.head_count', 'u32', 4],
          ['llama.attention.head_count_kv', 'u32', 2],
          ['llama.context_length', 'u32', 64],
          ['llama.attention.layer_norm_rms_epsilon', 'f32', 1e-5],
          ['tokenizer.ggml.bos_token_id', 'u32', 1],
          ['tokenizer.ggml.eos_token_id', 'u32', 2],
        ],
        tensors,
      );
      const loaded = await loadModel({ 'tiny.gguf': bytes });
      const expected = LlamaModel.fromParameters(c, memory);
      try {
        const a = await generate(loaded.model as DecoderOnlyModel, { inputIds: [1, 5, 9, 20], maxNewTokens: 20, stopTokenIds: [] });
        const b = await generate(expected, { inputIds: [1, 5, 9, 20], maxNewTokens: 20, stopTokenIds: [] });
        expect(a.sequences[0]!.tokens).toEqual(b.sequences[0]!.tokens);
        const la = await (loaded.model as DecoderOnlyModel).forward([[1, 5, 9]], null);
        const lb = await expected.forward([[1, 5, 9]], null);
        la.data.forEach((v, i) => expect(Math.abs(v - lb.data[i]!)).toBeLessThan(1e-4));
      } finally {
        loaded.dispose();
        expected.dispose();
      }
    });
  }
});
