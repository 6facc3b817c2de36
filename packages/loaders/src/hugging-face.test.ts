import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate, translate, type DecoderOnlyModel, type EncoderDecoderModel } from '@kvt/core';
import {
  EncoderDecoderTransformer,
  Gpt2Model,
  LlamaModel,
  randomEncoderDecoderParameters,
  randomGpt2Parameters,
  randomLlamaParameters,
  transpose2d,
  type EncoderDecoderConfig,
  type Gpt2Config,
  type HostTensor,
  type LlamaConfig,
  type ParameterSet,
} from '@kvt/models';
import { loadModel, writeSafetensors } from './index.js';

/** kvt layout → Hugging Face names, the inverse of the loader's mapping, written independently here. */
function llamaToHf(c: LlamaConfig, p: ParameterSet): Record<string, HostTensor> {
  const d = c.hiddenSize;
  const hd = d / c.numHeads;
  const out: Record<string, HostTensor> = { 'model.embed_tokens.weight': p.take('embedding', [c.vocabSize, d]), 'model.norm.weight': p.take('finalNorm', [d]) };
  for (let i = 0; i < c.numLayers; i++) {
    const pre = `model.layers.${i}`;
    out[`${pre}.input_layernorm.weight`] = p.take(`layers.${i}.attentionNorm`, [d]);
    out[`${pre}.post_attention_layernorm.weight`] = p.take(`layers.${i}.ffnNorm`, [d]);
    out[`${pre}.self_attn.q_proj.weight`] = transpose2d(p.take(`layers.${i}.q`, [d, c.numHeads * hd]));
    out[`${pre}.self_attn.k_proj.weight`] = transpose2d(p.take(`layers.${i}.k`, [d, c.numKvHeads * hd]));
    out[`${pre}.self_attn.v_proj.weight`] = transpose2d(p.take(`layers.${i}.v`, [d, c.numKvHeads * hd]));
    out[`${pre}.self_attn.o_proj.weight`] = transpose2d(p.take(`layers.${i}.o`, [d, d]));
    out[`${pre}.mlp.gate_proj.weight`] = transpose2d(p.take(`layers.${i}.gate`, [d, c.intermediateSize]));
    out[`${pre}.mlp.up_proj.weight`] = transpose2d(p.take(`layers.${i}.up`, [d, c.intermediateSize]));
    out[`${pre}.mlp.down_proj.weight`] = transpose2d(p.take(`layers.${i}.down`, [c.intermediateSize, d]));
  }
  if (p.has('output')) out['lm_head.weight'] = transpose2d(p.take('output', [d, c.vocabSize]));
  return out;
}

function gpt2ToHf(c: Gpt2Config, p: ParameterSet): Record<string, HostTensor> {
  const out: Record<string, HostTensor> = {};
  const get = (n: string) => p.get(n);
  out['transformer.wte.weight'] = get('wte');
  out['transformer.wpe.weight'] = get('wpe');
  out['transformer.ln_f.weight'] = get('finalNorm.weight');
  out['transformer.ln_f.bias'] = get('finalNorm.bias');
  for (let i = 0; i < c.numLayers; i++) {
    const h = `transformer.h.${i}`;
    for (const [k, n] of [['norm1', 'ln_1'], ['norm2', 'ln_2']]) {
      out[`${h}.${n}.weight`] = get(`layers.${i}.${k}.weight`);
      out[`${h}.${n}.bias`] = get(`layers.${i}.${k}.bias`);
    }
    for (const [k, n] of [['qkv', 'attn.c_attn'], ['out', 'attn.c_proj'], ['fc', 'mlp.c_fc'], ['proj', 'mlp.c_proj']]) {
      out[`${h}.${n}.weight`] = get(`layers.${i}.${k}`);
      out[`${h}.${n}.bias`] = get(`layers.${i}.${k}.bias`);
    }
  }
  return out;
}

function encDecToHf(c: EncoderDecoderConfig, p: ParameterSet): Record<string, HostTensor> {
  const d = c.dModel;
  const get = (n: string) => p.get(n);
  const out: Record<string, HostTensor> = { 'model.shared.weight': get('sourceEmbedding') };
  if (p.has('outputBias')) out['final_logits_bias'] = { data: get('outputBias').data, shape: [1, c.targetVocabSize] };
  for (const side of ['encoder', 'decoder'] as const) {
    if (c.positions.kind === 'learned') out[`model.${side}.embed_positions.weight`] = get(`${side}.positions`);
    if (c.embeddingNorm) {
      out[`model.${side}.layernorm_embedding.weight`] = get(`${side}.embeddingNorm.weight`);
      out[`model.${side}.layernorm_embedding.bias`] = get(`${side}.embeddingNorm.bias`);
    }
    if (c.encoderFinalNorm) {
      out[`model.${side}.layer_norm.weight`] = get(`${side}.finalNorm.weight`);
      out[`model.${side}.layer_norm.bias`] = get(`${side}.finalNorm.bias`);
    }
    const n = side === 'encoder' ? c.encoderLayers : c.decoderLayers;
    for (let i = 0; i < n; i++) {
      const pre = `model.${side}.layers.${i}`;
      const t = `${side}.layers.${i}`;
      const attn = (hf: string, kvt: string) => {
        for (const [k, m] of [['q', 'q_proj'], ['k', 'k_proj'], ['v', 'v_proj'], ['o', 'out_proj']]) {
          out[`${pre}.${hf}.${m}.weight`] = transpose2d(get(`${t}.${kvt}.${k}`));
          out[`${pre}.${hf}.${m}.bias`] = get(`${t}.${kvt}.${k}.bias`);
        }
        out[`${pre}.${hf}_layer_norm.weight`] = get(`${t}.${kvt}Norm.weight`);
        out[`${pre}.${hf}_layer_norm.bias`] = get(`${t}.${kvt}Norm.bias`);
      };
      attn('self_attn', 'selfAttention');
      if (side === 'decoder') attn('encoder_attn', 'crossAttention');
      out[`${pre}.fc1.weight`] = transpose2d(get(`${t}.ffn.up`));
      out[`${pre}.fc1.bias`] = get(`${t}.ffn.up.bias`);
      out[`${pre}.fc2.weight`] = transpose2d(get(`${t}.ffn.down`));
      out[`${pre}.fc2.bias`] = get(`${t}.ffn.down.bias`);
      out[`${pre}.final_layer_norm.weight`] = get(`${t}.ffnNorm.weight`);
      out[`${pre}.final_layer_norm.bias`] = get(`${t}.ffnNorm.bias`);
    }
  }
  void d;
  return out;
}

const dirs: string[] = [];
function writeFolder(config: object, tensors: Record<string, HostTensor>, shards = 1, dtype: 'F32' | 'F16' = 'F32'): string {
  const dir = mkdtempSync(join(tmpdir(), 'kvt-hf-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  if (shards === 1) writeFileSync(join(dir, 'model.safetensors'), writeSafetensors(tensors, dtype));
  else {
    const names = Object.keys(tensors);
    const weightMap: Record<string, string> = {};
    for (let s = 0; s < shards; s++) {
      const file = `model-0000${s + 1}-of-0000${shards}.safetensors`;
      const part = Object.fromEntries(names.filter((_, i) => i % shards === s).map((n) => [n, tensors[n]!]));
      for (const n of Object.keys(part)) weightMap[n] = file;
      writeFileSync(join(dir, file), writeSafetensors(part, dtype));
    }
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  }
  return dir;
}

const PROMPT = [1, 7, 12, 30, 5];

for (const backend of ['cpu', 'wasm']) {
  describe(`Hugging Face folders written by the test load and generate like in-memory weights (${backend})`, () => {
    beforeAll(async () => {
      tf.env().set('IS_TEST', true);
      await tf.setBackend(backend);
    });
    afterAll(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

    const sameTokens = async (a: DecoderOnlyModel, b: DecoderOnlyModel) => {
      const x = await generate(a, { inputIds: PROMPT, maxNewTokens: 24 });
      const y = await generate(b, { inputIds: PROMPT, maxNewTokens: 24 });
      expect(y.sequences[0]!.tokens).toEqual(x.sequences[0]!.tokens);
    };

    for (const [label, tied, shards] of [['llama', true, 1], ['llama (separate lm_head, 3 shards)', false, 3]] as const) {
      it(label, async () => {
        const c: LlamaConfig = { architecture: 'llama', vocabSize: 64, hiddenSize: 32, intermediateSize: 48, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositions: 64, normEpsilon: 1e-6, ropeTheta: 10000, ropeStyle: 'half', specialTokens: { bos: 1, eos: [2] } };
        const p = randomLlamaParameters(c, 5, { tied });
        const dir = writeFolder(
          { model_type: 'llama', vocab_size: 64, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64, rms_norm_eps: 1e-6, rope_theta: 10000, bos_token_id: 1, eos_token_id: 2, tie_word_embeddings: tied },
          llamaToHf(c, p),
          shards,
        );
        const memory = LlamaModel.fromParameters(c, p);
        const loaded = await loadModel(dir);
        try {
          expect(loaded.kind).toBe('decoder-only');
          await sameTokens(memory, loaded.model as DecoderOnlyModel);
        } finally {
          memory.dispose();
          loaded.dispose();
        }
      });
    }

    it('gpt2 (and F16 weights load close to F32)', async () => {
      const c: Gpt2Config = { architecture: 'gpt2', vocabSize: 64, hiddenSize: 32, numLayers: 2, numHeads: 4, maxPositions: 64, normEpsilon: 1e-5, specialTokens: { eos: [2] } };
      const p = randomGpt2Parameters(c, 6);
      const hfConfig = { model_type: 'gpt2', vocab_size: 64, n_embd: 32, n_layer: 2, n_head: 4, n_positions: 64, layer_norm_epsilon: 1e-5, eos_token_id: 2, bos_token_id: 2 };
      const memory = Gpt2Model.fromParameters(c, p);
      const loaded = await loadModel(writeFolder(hfConfig, gpt2ToHf(c, p)));
      const half = await loadModel(writeFolder(hfConfig, gpt2ToHf(c, p), 1, 'F16'));
      try {
        await sameTokens(memory, loaded.model as DecoderOnlyModel);
        const a = await memory.forward([PROMPT], null);
        const b = await (half.model as DecoderOnlyModel).forward([PROMPT], null);
        const scale = Math.max(...Array.from(a.data, Math.abs));
        const diff = Math.max(...Array.from(a.data, (v, i) => Math.abs(v - b.data[i]!)));
        expect(diff).toBeLessThan(2e-2 * scale);
      } finally {
        memory.dispose();
        loaded.dispose();
        half.dispose();
      }
    });

    for (const type of ['marian', 'bart', 'mbart'] as const) {
      it(type, async () => {
        const V = 60;
        const pre = type === 'mbart';
        const c: EncoderDecoderConfig = {
          architecture: 'encoder-decoder', dModel: 32, numHeads: 4, encoderLayers: 2, decoderLayers: 2, ffnDim: 64,
          sourceVocabSize: V, targetVocabSize: V, maxPositions: 64, normPlacement: pre ? 'pre' : 'post', normEpsilon: 1e-5,
          activation: type === 'marian' ? 'silu' : 'gelu',
          positions: type === 'marian' ? { kind: 'sinusoidal', layout: 'concat', denominator: 'half', offset: 0 } : { kind: 'learned', offset: 2 },
          scaleEmbedding: type === 'marian', embeddingNorm: type !== 'marian', encoderFinalNorm: pre, decoderFinalNorm: pre,
          specialTokens: { decoderStart: type === 'marian' ? 59 : 2, eos: [0], pad: 59 },
        };
        const p = randomEncoderDecoderParameters(c, 7, { sharedEmbeddings: true, outputBias: true });
        const hfConfig = {
          model_type: type, vocab_size: V, d_model: 32, encoder_layers: 2, decoder_layers: 2, encoder_attention_heads: 4, decoder_attention_heads: 4,
          encoder_ffn_dim: 64, decoder_ffn_dim: 64, activation_function: type === 'marian' ? 'swish' : 'gelu', max_position_embeddings: 64,
          scale_embedding: type === 'marian', pad_token_id: 59, eos_token_id: 0, decoder_start_token_id: type === 'marian' ? 59 : 2,
          ...(pre ? { normalize_before: true } : {}),
        };
        const memory = EncoderDecoderTransformer.fromParameters(c, p);
        const loaded = await loadModel(writeFolder(hfConfig, encDecToHf(c, p)));
        try {
          expect(loaded.kind).toBe('encoder-decoder');
          const x = await translate(memory, { sourceIds: [5, 9, 13, 0], maxNewTokens: 20, stopTokenIds: [] });
          const y = await translate(loaded.model as EncoderDecoderModel, { sourceIds: [5, 9, 13, 0], maxNewTokens: 20, stopTokenIds: [] });
          expect(y.translations[0]!.tokens).toEqual(x.translations[0]!.tokens);
        } finally {
          memory.dispose();
          loaded.dispose();
        }
      });
    }
  });
}
