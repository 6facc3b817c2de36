import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvtError, ModelFormatError, generate, translate, type DecoderOnlyModel, type EncoderDecoderModel } from '@kvt/core';
import { randomEncoderDecoderParameters, randomLlamaParameters, transpose2d, type EncoderDecoderConfig, type HostTensor, type LlamaConfig } from '@kvt/models';
import { loadModel, writeSafetensors } from './index.js';

// Each Hugging Face generation setting, applied by default from a tiny model folder the test writes (seeded random
// weights; every test first checks that the setting would change this model's output), against the same weights
// without the setting. The semantics are transformers' `model.generate()` (generation/logits_process.py).

const V = 64;
const PROMPT = [1, 7, 12, 30, 5];
const llamaConfig = { model_type: 'llama', vocab_size: V, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 128, rms_norm_eps: 1e-6, bos_token_id: 1, eos_token_id: 2, tie_word_embeddings: true };

function llamaTensors(): Record<string, HostTensor> {
  const c: LlamaConfig = { architecture: 'llama', vocabSize: V, hiddenSize: 32, intermediateSize: 48, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositions: 128, ropeStyle: 'half', specialTokens: { eos: [2] } };
  const p = randomLlamaParameters(c, 21, { tied: true });
  const out: Record<string, HostTensor> = { 'model.embed_tokens.weight': p.take('embedding', [V, 32]), 'model.norm.weight': p.take('finalNorm', [32]) };
  for (let i = 0; i < 2; i++) {
    const pre = `model.layers.${i}`;
    out[`${pre}.input_layernorm.weight`] = p.take(`layers.${i}.attentionNorm`, [32]);
    out[`${pre}.post_attention_layernorm.weight`] = p.take(`layers.${i}.ffnNorm`, [32]);
    for (const [k, n, cols] of [['q', 'q_proj', 32], ['k', 'k_proj', 16], ['v', 'v_proj', 16], ['o', 'o_proj', 32]] as const)
      out[`${pre}.self_attn.${n}.weight`] = transpose2d(p.take(`layers.${i}.${k}`, [32, cols]));
    for (const [k, n, shape] of [['gate', 'gate_proj', [32, 48]], ['up', 'up_proj', [32, 48]], ['down', 'down_proj', [48, 32]]] as const)
      out[`${pre}.mlp.${n}.weight`] = transpose2d(p.take(`layers.${i}.${k}`, [...shape]));
  }
  return out;
}

const dirs: string[] = [];
let weights: Uint8Array;
function folder(config: object, generation?: object, tensors?: Uint8Array): string {
  const dir = mkdtempSync(join(tmpdir(), 'kvt-gen-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  writeFileSync(join(dir, 'model.safetensors'), tensors ?? weights);
  if (generation) writeFileSync(join(dir, 'generation_config.json'), JSON.stringify(generation));
  return dir;
}

/** Greedy output of the folder's model for PROMPT with no options (its own settings apply). */
async function run(config: object, generation?: object, request: object = {}) {
  const loaded = await loadModel(folder(config, generation));
  try {
    const r = await generate(loaded.model as DecoderOnlyModel, { inputIds: PROMPT, ...request });
    return { tokens: r.sequences[0]!.tokens, config: r.config, finish: r.sequences[0]!.finishReason };
  } finally {
    loaded.dispose();
  }
}

const bigrams = (xs: number[]) => xs.slice(1).map((t, i) => `${xs[i]},${t}`);
const repeatsBigram = (xs: number[]) => new Set(bigrams(xs)).size < bigrams(xs).length;

describe('Hugging Face generation settings apply by default (tiny llama folder, wasm)', () => {
  let free: number[];
  const base = { max_new_tokens: 16, eos_token_id: 2 };
  beforeAll(async () => {
    tf.env().set('IS_TEST', true);
    await tf.setBackend('wasm');
    weights = writeSafetensors(llamaTensors());
    free = (await run(llamaConfig, base)).tokens;
    expect(free).toHaveLength(16); // the weights never choose eos (2) in 16 tokens
  });
  afterAll(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('max_new_tokens, and max_length counting the prompt (max_new_tokens wins when both are given)', async () => {
    expect((await run(llamaConfig, { max_length: 9 })).tokens).toEqual(free.slice(0, 4));
    expect((await run(llamaConfig, { max_length: 9, max_new_tokens: 6 })).tokens).toEqual(free.slice(0, 6));
    expect((await run(llamaConfig, base, { maxNewTokens: 3 })).tokens).toEqual(free.slice(0, 3)); // explicit wins
  });

  it('bad_words_ids: a single token never, a sequence never completed', async () => {
    const banned = free[0]!;
    const pair = [free[2]!, free[3]!];
    const r = await run(llamaConfig, { ...base, bad_words_ids: [[banned], pair] });
    expect(r.tokens).not.toContain(banned);
    expect(bigrams([...PROMPT, ...r.tokens])).not.toContain(pair.join());
    expect((await run(llamaConfig, { ...base, bad_words_ids: [[banned]] }, { badWordsIds: [] })).tokens).toEqual(free); // explicit off
  });

  it('no_repeat_ngram_size', async () => {
    expect(repeatsBigram([...PROMPT, ...free])).toBe(true);
    const r = await run(llamaConfig, { ...base, no_repeat_ngram_size: 2 });
    expect(repeatsBigram([...PROMPT, ...r.tokens])).toBe(false);
  });

  it('repetition_penalty', async () => {
    const r = await run(llamaConfig, { ...base, repetition_penalty: 1.8 });
    expect(r.config.repetitionPenalty).toBe(1.8);
    expect(r.tokens).not.toEqual(free);
  });

  it('eos_token_id as a list ends at the first of them; min_new_tokens and min_length hold them off', async () => {
    // the first token the free run gives that it had not given before, and one it never gives
    const k = free.findIndex((t, i) => i > 0 && !free.slice(0, i).includes(t));
    const never = [...Array(V).keys()].find((t) => t > 2 && !free.includes(t))!;
    expect(k).toBeGreaterThan(0);
    const eos = [never, free[k]!];
    const stops = await run(llamaConfig, { max_new_tokens: 16, eos_token_id: eos });
    expect(stops.tokens).toEqual(free.slice(0, k + 1));
    expect(stops.finish).toBe('stop-token');
    const min = await run(llamaConfig, { max_new_tokens: 16, eos_token_id: eos, min_new_tokens: k + 3 });
    expect(min.tokens.slice(0, k + 3).some((t) => eos.includes(t))).toBe(false);
    expect(min.tokens.length).toBeGreaterThan(k + 1);
    const minLength = await run(llamaConfig, { max_new_tokens: 16, eos_token_id: eos, min_length: PROMPT.length + k + 3 });
    expect(minLength.tokens).toEqual(min.tokens);
  });

  it('forced_eos_token_id at the length limit; suppress_tokens; begin_suppress_tokens', async () => {
    const forced = await run(llamaConfig, { ...base, forced_eos_token_id: 2 });
    expect(forced.tokens).toEqual([...free.slice(0, 15), 2]);
    const suppressed = await run(llamaConfig, { ...base, suppress_tokens: [free[0], free[1]] });
    expect(suppressed.tokens).not.toContain(free[0]);
    expect(suppressed.tokens).not.toContain(free[1]);
    const begin = await run(llamaConfig, { ...base, begin_suppress_tokens: [free[0]] });
    expect(begin.tokens[0]).not.toBe(free[0]);
  });

  it('num_beams, length_penalty, early_stopping and num_return_sequences; sampling only with do_sample', async () => {
    const beams = await run(llamaConfig, { ...base, num_beams: 3, length_penalty: 0.5, early_stopping: true, num_return_sequences: 2, temperature: 0.7 });
    expect(beams.config).toMatchObject({ numBeams: 3, lengthPenalty: 0.5, earlyStopping: true, numReturnSequences: 2, temperature: 0 });
    const explicit = await run(llamaConfig, base, { numBeams: 3, lengthPenalty: 0.5, earlyStopping: true, numReturnSequences: 2 });
    expect(beams.tokens).toEqual(explicit.tokens);
    const sampled = await run(llamaConfig, { ...base, do_sample: true, temperature: 0.7 }, { seed: 3 });
    expect(sampled.config).toMatchObject({ temperature: 0.7, topK: 50, sampling: true });
  });

  it("an older config.json's generation keys apply when there is no generation_config.json", async () => {
    const r = await run({ ...llamaConfig, max_new_tokens: 16, bad_words_ids: [[free[0]]] });
    expect(r.config.maxNewTokens).toBe(16);
    expect(r.tokens).not.toContain(free[0]);
  });

  it('bad values are typed errors at load, naming the file and key, with nothing left behind', async () => {
    const before = tf.memory().numTensors;
    const bad = async (config: object, generation?: object) => loadModel(folder(config, generation)).then((l) => (l.dispose(), undefined), (e: unknown) => e);
    for (const [config, generation, key] of [
      [llamaConfig, { num_beams: 1e9 }, 'num_beams'],
      [llamaConfig, { bad_words_ids: [[V + 3]] }, 'bad_words_ids'],
      [llamaConfig, { eos_token_id: -1 }, 'eos_token_id'],
      [llamaConfig, { temperature: -2, do_sample: true }, 'temperature'],
      [{ ...llamaConfig, pad_token_id: 1e9 }, undefined, 'pad'],
      [{ ...llamaConfig, bos_token_id: V }, undefined, 'bos'],
      [{ ...llamaConfig, rope_theta: 0 }, undefined, 'ropeTheta'],
      [{ ...llamaConfig, rms_norm_eps: -1 }, undefined, 'normEpsilon'],
      [{ ...llamaConfig, num_hidden_layers: 1 }, undefined, 'num_hidden_layers'],
    ] as const) {
      const e = await bad(config, generation);
      expect(ModelFormatError.isInstance(e), `${key}: ${String(e)}`).toBe(true);
      expect((e as Error).message, key).toContain(key);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a table of wrong types and out-of-range values for every config.json and generation_config.json key read', async () => {
    const before = tf.memory().numTensors;
    const counts = [0, -1, 1.5, 'x', 1e9, {}, true];
    const ids = [-1, 1.5, 'x', 1e9, {}, true];
    const positive = [0, -1, 'x', {}, true];
    const configCases: Record<string, unknown[]> = {
      vocab_size: counts, hidden_size: counts, intermediate_size: counts, num_hidden_layers: counts, num_attention_heads: counts,
      num_key_value_heads: counts, head_dim: counts, max_position_embeddings: counts, rms_norm_eps: positive, rope_theta: positive,
      bos_token_id: ids, eos_token_id: [...ids, [1.5], ['x']], pad_token_id: ids,
    };
    const generationCases: Record<string, unknown[]> = {
      max_new_tokens: [0, -1, 1.5, 'x', {}], max_length: [0, -1, 1.5, 'x', {}], min_new_tokens: [-1, 1.5, 'x'], min_length: [-1, 1.5, 'x'],
      temperature: [-1, 'x', {}], top_k: [-1, 1.5, 'x'], top_p: [0, 2, 'x'], min_p: [-1, 1, 'x'], repetition_penalty: [0, -1, 'x'],
      no_repeat_ngram_size: [-1, 1.5, 'x'], bad_words_ids: [[[V]], [[]], 'x', 5], suppress_tokens: [[V], 'x', -1], begin_suppress_tokens: [[V], 'x', 1.5],
      forced_bos_token_id: ids, forced_eos_token_id: [...ids, [V]], eos_token_id: [...ids, [V]], num_beams: [0, -1, 1.5, 1e9, 'x'],
      length_penalty: ['x', {}], early_stopping: ['yes', 1, {}], num_return_sequences: [0, 3, 1.5, 'x'], max_time: [0, -1, 'x'],
    };
    let cases = 0;
    const expectLoadError = async (what: string, config: object, generation?: object) => {
      const e = await loadModel(folder(config, generation)).then((l) => (l.dispose(), undefined), (err: unknown) => err);
      expect(KvtError.isInstance(e), `${what}: ${e === undefined ? "loaded" : String(e)}`).toBe(true);
      cases++;
    };
    for (const [key, values] of Object.entries(configCases))
      for (const v of values) await expectLoadError(`config.json ${key}: ${JSON.stringify(v)}`, { ...llamaConfig, [key]: v });
    for (const [key, values] of Object.entries(generationCases)) {
      const sampling = ['temperature', 'top_k', 'top_p', 'min_p'].includes(key) ? { do_sample: true } : {};
      for (const v of values) await expectLoadError(`generation_config.json ${key}: ${JSON.stringify(v)}`, llamaConfig, { ...sampling, [key]: v });
    }
    console.log(`bad config values rejected at load: ${cases}`);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('Hugging Face generation settings of an encoder-decoder (tiny marian folder, wasm)', () => {
  const SV = 40;
  const marian = {
    model_type: 'marian', vocab_size: SV, d_model: 32, encoder_layers: 2, decoder_layers: 2, encoder_attention_heads: 4, decoder_attention_heads: 4,
    encoder_ffn_dim: 64, decoder_ffn_dim: 64, activation_function: 'swish', max_position_embeddings: 64, scale_embedding: true,
    pad_token_id: 39, eos_token_id: 0, decoder_start_token_id: 39,
  };
  let marianWeights: Uint8Array;
  beforeAll(async () => {
    await tf.setBackend('wasm');
    const c: EncoderDecoderConfig = {
      architecture: 'encoder-decoder', dModel: 32, numHeads: 4, encoderLayers: 2, decoderLayers: 2, ffnDim: 64, sourceVocabSize: SV, targetVocabSize: SV,
      maxPositions: 64, normPlacement: 'post', activation: 'silu', positions: { kind: 'sinusoidal', layout: 'concat', denominator: 'half', offset: 0 },
      scaleEmbedding: true, specialTokens: { decoderStart: 39, eos: [0], pad: 39 },
    };
    const p = randomEncoderDecoderParameters(c, 8, { sharedEmbeddings: true, outputBias: false });
    const t: Record<string, HostTensor> = { 'model.shared.weight': p.get('sourceEmbedding') };
    for (const side of ['encoder', 'decoder'] as const)
      for (let i = 0; i < 2; i++) {
        const pre = `model.${side}.layers.${i}`;
        const k = `${side}.layers.${i}`;
        const attn = (hf: string, kvt: string) => {
          for (const [a, m] of [['q', 'q_proj'], ['k', 'k_proj'], ['v', 'v_proj'], ['o', 'out_proj']]) {
            t[`${pre}.${hf}.${m}.weight`] = transpose2d(p.get(`${k}.${kvt}.${a}`));
            t[`${pre}.${hf}.${m}.bias`] = p.get(`${k}.${kvt}.${a}.bias`);
          }
          t[`${pre}.${hf}_layer_norm.weight`] = p.get(`${k}.${kvt}Norm.weight`);
          t[`${pre}.${hf}_layer_norm.bias`] = p.get(`${k}.${kvt}Norm.bias`);
        };
        attn('self_attn', 'selfAttention');
        if (side === 'decoder') attn('encoder_attn', 'crossAttention');
        t[`${pre}.fc1.weight`] = transpose2d(p.get(`${k}.ffn.up`));
        t[`${pre}.fc1.bias`] = p.get(`${k}.ffn.up.bias`);
        t[`${pre}.fc2.weight`] = transpose2d(p.get(`${k}.ffn.down`));
        t[`${pre}.fc2.bias`] = p.get(`${k}.ffn.down.bias`);
        t[`${pre}.final_layer_norm.weight`] = p.get(`${k}.ffnNorm.weight`);
        t[`${pre}.final_layer_norm.bias`] = p.get(`${k}.ffnNorm.bias`);
      }
    marianWeights = writeSafetensors(t);
  });

  const translateWith = async (config: object, generation?: object, request: object = {}) => {
    const loaded = await loadModel(folder(config, generation, marianWeights));
    try {
      const r = await translate(loaded.model as EncoderDecoderModel, { sourceIds: [5, 9, 13, 0], logprobs: true, ...request });
      return { tokens: r.translations[0]!.tokens, logprobs: r.translations[0]!.logprobs ?? [], config: r.config };
    } finally {
      loaded.dispose();
    }
  };

  it("decoder_start_token_id from generation_config.json wins over config.json's; forced_bos_token_id", async () => {
    const base = { max_new_tokens: 12, eos_token_id: 0 };
    const from39 = await translateWith(marian, base);
    // the start token changes what these weights predict (their log-probabilities)
    const from3 = await translateWith({ ...marian, decoder_start_token_id: 3 }, base);
    expect(from3.logprobs).not.toEqual(from39.logprobs);
    const fromGeneration = await translateWith(marian, { ...base, decoder_start_token_id: 3 });
    expect(fromGeneration.logprobs).toEqual(from3.logprobs);
    const forced = await translateWith(marian, { ...base, forced_bos_token_id: 17 });
    expect(forced.tokens[0]).toBe(17);
    expect(from39.tokens[0]).not.toBe(17);
  });

  it('Marian bans its pad id through bad_words_ids; max_length counts the start token', async () => {
    const free = await translateWith(marian, { max_new_tokens: 12, eos_token_id: 0 }, { stopTokenIds: [] });
    const padUsed = free.tokens.includes(39);
    const banned = await translateWith(marian, { max_length: 13, eos_token_id: 0, bad_words_ids: [[39]] }, { stopTokenIds: [] });
    expect(banned.config.maxNewTokens).toBe(12);
    expect(banned.tokens).not.toContain(39);
    if (padUsed) expect(banned.tokens).not.toEqual(free.tokens);
  });
});
