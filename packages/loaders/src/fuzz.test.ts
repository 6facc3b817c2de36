/**
 * Fuzzing the loaders with the real fixtures: seeded mutations (truncations, flipped bytes, rewritten length and
 * count fields, inserted and deleted bytes, edited JSON) of each format. Every case must either load or throw a
 * typed kvt error, quickly, leaving no tensor behind.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Rng } from '@kvt/core';
import {
  randomEncoderDecoderParameters,
  randomGpt2Parameters,
  randomLlamaParameters,
  transpose2d,
  type EncoderDecoderConfig,
  type Gpt2Config,
  type HostTensor,
  type LlamaConfig,
} from '@kvt/models';
import { loadModel, writeSafetensors, type LoadedModel } from './index.js';
import { fuzzLoad, mutateBytes, mutateJson } from './testing/fuzz.js';
import { fixture, haveFixtures } from './__tests__/fixtures.js';

const CASES = 1000;
/**
 * The largest single buffer a case may allocate: a stored tensor expanded to float32 (at most 4× its bytes, Q8_0's
 * 34 bytes per 32 values being the widest) plus 1 MiB for the engine's own buffers. A lying length field would ask
 * for far more.
 */
const bound = (inputBytes: number) => 4 * inputBytes + (1 << 20);
const mutate = mutateBytes;
/** What a loaded model's tokenizers must survive: encoding text and decoding its own and arbitrary ids. */
const useTokenizers = (loaded: LoadedModel) => {
  for (const t of [loaded.tokenizer, loaded.kind === 'encoder-decoder' ? loaded.targetTokenizer : undefined]) {
    if (!t) continue;
    const ids = t.encode('Once upon a time, naïve 😀 <s>');
    t.decode(ids);
    t.decode([0, 1, 2, 3, t.vocabSize - 1]);
    const d = t.createStreamDecoder();
    for (const id of ids) d.push(id);
    d.flush();
  }
};
const expectOnlyTypedErrors = (name: string, make: (rng: Rng, i: number) => Record<string, Uint8Array>, cases = CASES) =>
  fuzzLoad(name, cases, make, bound, useTokenizers);

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

  /** A Hugging Face folder's files, each fuzzed in turn: the safetensors header and data, config.json, generation_config.json. */
  const fuzzFolder = async (name: string, config: Record<string, unknown>, tensors: Record<string, HostTensor>) => {
    const st = writeSafetensors(tensors);
    const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
    const generation = { max_new_tokens: 8, eos_token_id: 2, bad_words_ids: [[3]], num_beams: 2, no_repeat_ngram_size: 2 };
    const files = { 'config.json': json(config), 'model.safetensors': st, 'generation_config.json': json(generation) };
    (await loadModel(files)).dispose(); // the unmutated folder loads
    const headerLength = Number(new DataView(st.buffer).getBigUint64(0, true)) + 8;
    const r = await expectOnlyTypedErrors(name, (rng, i) => {
      switch (i % 3) {
        case 0: return { ...files, 'model.safetensors': mutate(st, rng, headerLength) };
        case 1: return { ...files, 'config.json': mutateJson(config, rng) };
        default: return { ...files, 'generation_config.json': mutateJson(generation, rng) };
      }
    });
    expect(r.rejected).toBeGreaterThan(CASES / 4);
  };

  it('Hugging Face GPT-2 folder (safetensors, config.json, generation_config.json)', async () => {
    const c: Gpt2Config = { architecture: 'gpt2', vocabSize: 24, hiddenSize: 16, numLayers: 2, numHeads: 2, maxPositions: 32, specialTokens: { eos: [2] } };
    const p = randomGpt2Parameters(c, 4);
    const t: Record<string, HostTensor> = { 'wte.weight': p.get('wte'), 'wpe.weight': p.get('wpe'), 'ln_f.weight': p.get('finalNorm.weight'), 'ln_f.bias': p.get('finalNorm.bias') };
    for (let i = 0; i < 2; i++) {
      for (const [k, n] of [['norm1', 'ln_1'], ['norm2', 'ln_2']]) {
        t[`h.${i}.${n}.weight`] = p.get(`layers.${i}.${k}.weight`);
        t[`h.${i}.${n}.bias`] = p.get(`layers.${i}.${k}.bias`);
      }
      for (const [k, n] of [['qkv', 'attn.c_attn'], ['out', 'attn.c_proj'], ['fc', 'mlp.c_fc'], ['proj', 'mlp.c_proj']]) {
        t[`h.${i}.${n}.weight`] = p.get(`layers.${i}.${k}`);
        t[`h.${i}.${n}.bias`] = p.get(`layers.${i}.${k}.bias`);
      }
    }
    await fuzzFolder('GPT-2 folder', { model_type: 'gpt2', vocab_size: 24, n_embd: 16, n_layer: 2, n_head: 2, n_positions: 32, layer_norm_epsilon: 1e-5, eos_token_id: 2 }, t);
  });

  it('Hugging Face Llama folder (safetensors, config.json, generation_config.json)', async () => {
    const c: LlamaConfig = { architecture: 'llama', vocabSize: 24, hiddenSize: 16, intermediateSize: 24, numLayers: 2, numHeads: 2, numKvHeads: 1, maxPositions: 32, ropeStyle: 'half', specialTokens: { eos: [2] } };
    const p = randomLlamaParameters(c, 5, { tied: true });
    const t: Record<string, HostTensor> = { 'model.embed_tokens.weight': p.take('embedding', [24, 16]), 'model.norm.weight': p.take('finalNorm', [16]) };
    for (let i = 0; i < 2; i++) {
      const pre = `model.layers.${i}`;
      t[`${pre}.input_layernorm.weight`] = p.take(`layers.${i}.attentionNorm`, [16]);
      t[`${pre}.post_attention_layernorm.weight`] = p.take(`layers.${i}.ffnNorm`, [16]);
      for (const [k, n, cols] of [['q', 'q_proj', 16], ['k', 'k_proj', 8], ['v', 'v_proj', 8], ['o', 'o_proj', 16]] as const)
        t[`${pre}.self_attn.${n}.weight`] = transpose2d(p.take(`layers.${i}.${k}`, [16, cols]));
      for (const [k, n, shape] of [['gate', 'gate_proj', [16, 24]], ['up', 'up_proj', [16, 24]], ['down', 'down_proj', [24, 16]]] as const)
        t[`${pre}.mlp.${n}.weight`] = transpose2d(p.take(`layers.${i}.${k}`, [...shape]));
    }
    const config = { model_type: 'llama', vocab_size: 24, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 32, rms_norm_eps: 1e-6, eos_token_id: 2, bos_token_id: 1, tie_word_embeddings: true };
    await fuzzFolder('Llama folder', config, t);
  });
});
