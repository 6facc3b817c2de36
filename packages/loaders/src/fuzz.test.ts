/**
 * Fuzzing the loaders with the real fixtures: seeded mutations (truncations, flipped bytes, rewritten length and
 * count fields, inserted and deleted bytes, edited JSON) of each format. Every case must either load or throw a
 * typed kvt error, quickly, leaving no tensor behind.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { KvtError, createRng, type Rng } from '@kvt/core';
import { randomEncoderDecoderParameters, transpose2d, type EncoderDecoderConfig, type HostTensor } from '@kvt/models';
import { loadModel, writeSafetensors } from './index.js';
import { fixture, haveFixtures } from './__tests__/fixtures.js';

const CASES = 1000;
const SPECIAL = [0, 1, 2, 0x7f, 0xff, 0x7fffffff, 0xffffffff, 0x80000000, 1 << 20];

function mutate(bytes: Uint8Array, rng: Rng, headerBytes: number): Uint8Array {
  const pick = (n: number) => Math.floor(rng.next() * n);
  const region = Math.min(bytes.length, headerBytes);
  const out = Uint8Array.from(bytes);
  switch (pick(7)) {
    case 0: // truncate, mostly inside the header
      return out.slice(0, rng.next() < 0.7 ? pick(region) : pick(bytes.length));
    case 1: {
      // flip a few header bytes
      for (let k = 1 + pick(4); k > 0; k--) out[pick(region)] ^= 1 << pick(8);
      return out;
    }
    case 2: {
      // flip bytes anywhere
      for (let k = 1 + pick(16); k > 0; k--) out[pick(out.length)] = pick(256);
      return out;
    }
    case 3: {
      // rewrite an aligned 32- or 64-bit field of the header with a special value
      const view = new DataView(out.buffer);
      const at = pick(Math.max(1, region - 8)) & ~3;
      const v = SPECIAL[pick(SPECIAL.length)]!;
      if (rng.next() < 0.5) view.setUint32(at, v >>> 0, true);
      else view.setBigUint64(at & ~7, BigInt(v) * BigInt(1 + pick(1 << 20)), true);
      return out;
    }
    case 4: {
      // delete a chunk
      const at = pick(region);
      return Uint8Array.from([...out.subarray(0, at), ...out.subarray(at + 1 + pick(64))]);
    }
    case 5: {
      // insert garbage
      const at = pick(region);
      const junk = Array.from({ length: 1 + pick(64) }, () => pick(256));
      return Uint8Array.from([...out.subarray(0, at), ...junk, ...out.subarray(at)]);
    }
    default: {
      // append garbage
      return Uint8Array.from([...out, ...Array.from({ length: 1 + pick(128) }, () => pick(256))]);
    }
  }
}

async function expectOnlyTypedErrors(name: string, make: (rng: Rng, i: number) => Record<string, Uint8Array>): Promise<{ loaded: number; rejected: number }> {
  const rng = createRng(20261129);
  let loaded = 0;
  let rejected = 0;
  for (let i = 0; i < CASES; i++) {
    const files = make(rng, i);
    const before = tf.memory().numTensors;
    const t0 = performance.now();
    try {
      const m = await loadModel(files);
      m.dispose();
      loaded++;
    } catch (e) {
      if (!KvtError.isInstance(e)) throw new Error(`${name} case ${i}: untyped ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
      rejected++;
    }
    expect(performance.now() - t0, `${name} case ${i} took too long`).toBeLessThan(10_000);
    expect(tf.memory().numTensors, `${name} case ${i} leaked tensors`).toBe(before);
  }
  return { loaded, rejected };
}

describe.skipIf(!haveFixtures)('loader fuzzing (1000 seeded cases per format): only typed errors, no leaks', () => {
  beforeAll(async () => {
    tf.env().set('IS_TEST', true);
    await tf.setBackend('cpu');
  });

  it('llama2.c checkpoint and tokenizer', async () => {
    const bin = readFileSync(fixture('stories260K', 'stories260K.bin'));
    const tok = readFileSync(fixture('stories260K', 'tok512.bin'));
    const r = await expectOnlyTypedErrors('llama2.c', (rng, i) =>
      i % 3 === 2 ? { 'stories260K.bin': bin, 'tok512.bin': mutate(tok, rng, 2048) } : { 'stories260K.bin': mutate(bin, rng, 64), 'tok512.bin': tok },
    );
    expect(r.rejected).toBeGreaterThan(CASES / 2);
  });

  it('SentencePiece tokenizer.model beside a llama2.c checkpoint', async () => {
    const bin = readFileSync(fixture('stories260K', 'stories260K.bin'));
    const spm = readFileSync(fixture('stories260K', 'tok512.model'));
    (await loadModel({ 'stories260K.bin': bin, 'tokenizer.model': spm })).dispose();
    const r = await expectOnlyTypedErrors('SentencePiece', (rng) => ({ 'stories260K.bin': bin, 'tokenizer.model': mutate(spm, rng, spm.length) }));
    expect(r.rejected).toBeGreaterThan(CASES / 3);
  });

  it('GGUF', async () => {
    const gguf = readFileSync(fixture('stories260K-gguf', 'stories260K.gguf'));
    const r = await expectOnlyTypedErrors('GGUF', (rng) => ({ 'stories260K.gguf': mutate(gguf, rng, 24_000) }));
    expect(r.rejected).toBeGreaterThan(CASES / 2);
  });

  it('CTranslate2 model and vocabularies', async () => {
    const dir = 'aren-transliteration';
    const model = readFileSync(fixture(dir, 'model.bin'));
    const src = readFileSync(fixture(dir, 'source_vocabulary.txt'));
    const tgt = readFileSync(fixture(dir, 'target_vocabulary.txt'));
    const r = await expectOnlyTypedErrors('CTranslate2', (rng, i) => ({
      'model.bin': i % 4 === 3 ? model : mutate(model, rng, 8192),
      'source_vocabulary.txt': src,
      'target_vocabulary.txt': i % 4 === 3 ? mutate(tgt, rng, 200) : tgt,
    }));
    expect(r.rejected).toBeGreaterThan(CASES / 3);
  });

  it('Hugging Face folder (config.json + model.safetensors)', async () => {
    const c: EncoderDecoderConfig = {
      architecture: 'encoder-decoder', dModel: 16, numHeads: 2, encoderLayers: 1, decoderLayers: 1, ffnDim: 32, sourceVocabSize: 20,
      targetVocabSize: 20, maxPositions: 32, normPlacement: 'post', activation: 'silu',
      positions: { kind: 'sinusoidal', layout: 'concat', denominator: 'half', offset: 0 }, scaleEmbedding: true,
      specialTokens: { decoderStart: 19, eos: [0], pad: 19 },
    };
    const p = randomEncoderDecoderParameters(c, 3, { sharedEmbeddings: true });
    const tensors: Record<string, HostTensor> = { 'model.shared.weight': p.get('sourceEmbedding') };
    for (const side of ['encoder', 'decoder'] as const) {
      const pre = `model.${side}.layers.0`;
      const t = `${side}.layers.0`;
      for (const [hf, kvt] of side === 'encoder' ? [['self_attn', 'selfAttention']] : [['self_attn', 'selfAttention'], ['encoder_attn', 'crossAttention']]) {
        for (const [k, m] of [['q', 'q_proj'], ['k', 'k_proj'], ['v', 'v_proj'], ['o', 'out_proj']]) {
          tensors[`${pre}.${hf}.${m}.weight`] = transpose2d(p.get(`${t}.${kvt}.${k}`));
          tensors[`${pre}.${hf}.${m}.bias`] = p.get(`${t}.${kvt}.${k}.bias`);
        }
        tensors[`${pre}.${hf}_layer_norm.weight`] = p.get(`${t}.${kvt}Norm.weight`);
        tensors[`${pre}.${hf}_layer_norm.bias`] = p.get(`${t}.${kvt}Norm.bias`);
      }
      tensors[`${pre}.fc1.weight`] = transpose2d(p.get(`${t}.ffn.up`));
      tensors[`${pre}.fc2.weight`] = transpose2d(p.get(`${t}.ffn.down`));
      tensors[`${pre}.final_layer_norm.weight`] = p.get(`${t}.ffnNorm.weight`);
      tensors[`${pre}.final_layer_norm.bias`] = p.get(`${t}.ffnNorm.bias`);
    }
    const st = writeSafetensors(tensors);
    const config = { model_type: 'marian', vocab_size: 20, d_model: 16, encoder_layers: 1, decoder_layers: 1, encoder_attention_heads: 2, decoder_attention_heads: 2, encoder_ffn_dim: 32, decoder_ffn_dim: 32, activation_function: 'swish', max_position_embeddings: 32, scale_embedding: true, pad_token_id: 19, eos_token_id: 0, decoder_start_token_id: 19 };
    const configBytes = new TextEncoder().encode(JSON.stringify(config));
    const headerLength = Number(new DataView(st.buffer).getBigUint64(0, true)) + 8;
    // the unmutated folder loads
    (await loadModel({ 'config.json': configBytes, 'model.safetensors': st })).dispose();
    const keys = Object.keys(config);
    const values = [0, -1, 1e9, 3.5, 'x', null, [], 2, 64];
    const r = await expectOnlyTypedErrors('safetensors', (rng, i) => {
      if (i % 4 === 3) {
        const c2: Record<string, unknown> = { ...config };
        c2[keys[Math.floor(rng.next() * keys.length)]!] = values[Math.floor(rng.next() * values.length)];
        return { 'config.json': new TextEncoder().encode(JSON.stringify(c2)), 'model.safetensors': st };
      }
      return { 'config.json': configBytes, 'model.safetensors': mutate(st, rng, headerLength) };
    });
    expect(r.rejected).toBeGreaterThan(CASES / 3);
  });
});
