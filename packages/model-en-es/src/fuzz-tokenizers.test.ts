import * as tf from '@tensorflow/tfjs-core';
import '@kvt/backend-cpu';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { randomEncoderDecoderParameters, transpose2d, type EncoderDecoderConfig, type HostTensor } from '@kvt/models';
import { loadModel, writeSafetensors, type LoadedModel } from '@kvt/loaders';
import { fuzzLoad, mutateBytes, mutateJson } from '@kvt/loaders/testing';
import { modelFiles } from './index.js';

// Seeded fuzzing of the en-es model's tokenizer files (tokenizer.json, tokenizer_config.json, source.spm, vocab.json)
// beside a tiny Marian model of the same vocabulary: only typed errors, no tensor left, no allocation a lying size
// field asked for.
const CASES = 300;
const file = (name: string) => new Uint8Array(readFileSync(join(modelFiles.path, name)));
const bound = (inputBytes: number) => 4 * inputBytes + (1 << 20);
/** What a loaded tokenizer must survive: encoding a sentence and decoding ids, its own and arbitrary ones. */
const useTokenizer = (loaded: LoadedModel) => {
  const t = loaded.tokenizer!;
  const ids = t.encode('Where is the train station? ¿Dónde está? 😀');
  t.decode(ids);
  t.decode([0, 1, 2, 7999, 5, 5]);
  const d = t.createStreamDecoder();
  for (const id of ids) d.push(id);
  d.flush();
};

describe('tokenizer file fuzzing (seeded): only typed errors, no leaks, bounded allocation', () => {
  let model: Record<string, Uint8Array>;
  beforeAll(async () => {
    await tf.setBackend('cpu');
    const V = 8000;
    const c: EncoderDecoderConfig = {
      architecture: 'encoder-decoder', dModel: 8, numHeads: 2, encoderLayers: 1, decoderLayers: 1, ffnDim: 8, sourceVocabSize: V, targetVocabSize: V,
      maxPositions: 32, normPlacement: 'post', activation: 'silu', positions: { kind: 'sinusoidal', layout: 'concat', denominator: 'half', offset: 0 },
      scaleEmbedding: true, specialTokens: { decoderStart: 2, eos: [0], pad: 2 },
    };
    const p = randomEncoderDecoderParameters(c, 9, { sharedEmbeddings: true });
    const t: Record<string, HostTensor> = { 'model.shared.weight': p.get('sourceEmbedding') };
    for (const side of ['encoder', 'decoder'] as const) {
      const pre = `model.${side}.layers.0`;
      const k = `${side}.layers.0`;
      for (const [hf, kvt] of side === 'encoder' ? [['self_attn', 'selfAttention']] : [['self_attn', 'selfAttention'], ['encoder_attn', 'crossAttention']]) {
        for (const [a, m] of [['q', 'q_proj'], ['k', 'k_proj'], ['v', 'v_proj'], ['o', 'out_proj']]) {
          t[`${pre}.${hf}.${m}.weight`] = transpose2d(p.get(`${k}.${kvt}.${a}`));
          t[`${pre}.${hf}.${m}.bias`] = p.get(`${k}.${kvt}.${a}.bias`);
        }
        t[`${pre}.${hf}_layer_norm.weight`] = p.get(`${k}.${kvt}Norm.weight`);
        t[`${pre}.${hf}_layer_norm.bias`] = p.get(`${k}.${kvt}Norm.bias`);
      }
      t[`${pre}.fc1.weight`] = transpose2d(p.get(`${k}.ffn.up`));
      t[`${pre}.fc2.weight`] = transpose2d(p.get(`${k}.ffn.down`));
      t[`${pre}.final_layer_norm.weight`] = p.get(`${k}.ffnNorm.weight`);
      t[`${pre}.final_layer_norm.bias`] = p.get(`${k}.ffnNorm.bias`);
    }
    const config = {
      model_type: 'marian', vocab_size: V, d_model: 8, encoder_layers: 1, decoder_layers: 1, encoder_attention_heads: 2, decoder_attention_heads: 2,
      encoder_ffn_dim: 8, decoder_ffn_dim: 8, activation_function: 'swish', max_position_embeddings: 32, scale_embedding: true,
      pad_token_id: 2, eos_token_id: 0, decoder_start_token_id: 2,
    };
    model = { 'config.json': new TextEncoder().encode(JSON.stringify(config)), 'model.safetensors': writeSafetensors(t) };
  });

  it(`tokenizer.json and tokenizer_config.json (${CASES} cases)`, async () => {
    const tokenizer = file('tokenizer.json');
    const tokenizerJson = JSON.parse(new TextDecoder().decode(tokenizer)) as unknown;
    const tokenizerConfig = JSON.parse(new TextDecoder().decode(file('tokenizer_config.json'))) as unknown;
    const files = { ...model, 'tokenizer.json': tokenizer, 'tokenizer_config.json': file('tokenizer_config.json') };
    (await loadModel(files)).dispose();
    const r = await fuzzLoad('tokenizer.json', CASES, (rng, i) => {
      switch (i % 3) {
        case 0: return { ...files, 'tokenizer.json': mutateBytes(tokenizer, rng, 4096) };
        case 1: return { ...files, 'tokenizer.json': mutateJson(tokenizerJson, rng) };
        default: return { ...files, 'tokenizer_config.json': mutateJson(tokenizerConfig, rng) };
      }
    }, bound, useTokenizer);
    expect(r.rejected).toBeGreaterThan(CASES / 4);
  });

  it(`Marian source.spm and vocab.json (${CASES} cases)`, async () => {
    const spm = file('source.spm');
    const vocab = file('vocab.json');
    const vocabJson = JSON.parse(new TextDecoder().decode(vocab)) as unknown;
    const files = { ...model, 'source.spm': spm, 'vocab.json': vocab };
    (await loadModel(files)).dispose();
    const r = await fuzzLoad('Marian tokenizer', CASES, (rng, i) => {
      switch (i % 3) {
        case 0: return { ...files, 'source.spm': mutateBytes(spm, rng, spm.length) };
        case 1: return { ...files, 'vocab.json': mutateBytes(vocab, rng, vocab.length) };
        default: return { ...files, 'vocab.json': mutateJson(vocabJson, rng) };
      }
    }, bound, useTokenizer);
    expect(r.rejected).toBeGreaterThan(CASES / 4);
  });
});
