import { InvalidOptionError, ModelFormatError, UnsupportedError, type GenerationOptions } from '@kvt/core';
import {
  ParameterSet,
  hostTensor,
  transpose2d,
  type EncoderDecoderConfig,
  type Gpt2Config,
  type HostTensor,
  type LlamaConfig,
} from '@kvt/models';
import type { ParsedCheckpoint } from './llama2c.js';

/** Reads a tensor by its Hugging Face name (across shards), or undefined when absent. */
export type TensorLookup = (name: string) => HostTensor | undefined;

export type HfArchitecture =
  | ({ kind: 'llama' } & ParsedCheckpoint<LlamaConfig>)
  | ({ kind: 'gpt2' } & ParsedCheckpoint<Gpt2Config>)
  | ({ kind: 'encoder-decoder' } & ParsedCheckpoint<EncoderDecoderConfig>);

/** The model types this loader maps (`config.json`'s `model_type`). */
export const SUPPORTED_MODEL_TYPES = ['llama', 'gpt2', 'marian', 'bart', 'mbart'] as const;

type Json = Record<string, unknown>;

function int(c: Json, key: string, file: string, fallback?: number): number {
  const v = c[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0)
    throw new ModelFormatError(file, `${key} is ${JSON.stringify(v)}; expected a positive integer`);
  return v;
}
const num = (c: Json, key: string, fallback: number) => (typeof c[key] === 'number' ? (c[key] as number) : fallback);
const ids = (v: unknown): number[] => (typeof v === 'number' ? [v] : Array.isArray(v) ? v.filter((x): x is number => typeof x === 'number') : []);

/**
 * Maps a Hugging Face `config.json` and its tensors to a kvt architecture. `model_type` selects it: llama, gpt2,
 * marian, bart, mbart. Linear weights `[out, in]` are transposed to kvt's `[in, out]` (GPT-2's Conv1D already is).
 *
 * @example
 * ```ts
 * const arch = fromHuggingFace(config, (name) => tensors.get(name), 'config.json');
 * ```
 */
export function fromHuggingFace(config: Json, tensor: TensorLookup, file = 'config.json'): HfArchitecture {
  const type = config.model_type;
  const need = (name: string): HostTensor => {
    const t = tensor(name);
    if (!t) throw new ModelFormatError(file.replace(/config\.json$/, 'model.safetensors'), `tensor ${name} is missing`);
    return t;
  };
  const lin = (name: string) => transpose2d(need(name));
  switch (type) {
    case 'llama': {
      const d = int(config, 'hidden_size', file);
      const H = int(config, 'num_attention_heads', file);
      const L = int(config, 'num_hidden_layers', file);
      const cfg: LlamaConfig = {
        architecture: 'llama',
        vocabSize: int(config, 'vocab_size', file),
        hiddenSize: d,
        intermediateSize: int(config, 'intermediate_size', file),
        numLayers: L,
        numHeads: H,
        numKvHeads: int(config, 'num_key_value_heads', file, H),
        headDim: int(config, 'head_dim', file, d / H),
        maxPositions: int(config, 'max_position_embeddings', file),
        normEpsilon: num(config, 'rms_norm_eps', 1e-6),
        ropeTheta: num(config, 'rope_theta', 10000),
        ropeStyle: 'half',
        specialTokens: {
          ...(typeof config.bos_token_id === 'number' ? { bos: config.bos_token_id } : {}),
          eos: ids(config.eos_token_id),
          ...(typeof config.pad_token_id === 'number' ? { pad: config.pad_token_id } : {}),
        },
      };
      const p = new ParameterSet(file);
      p.set('embedding', need('model.embed_tokens.weight'));
      for (let i = 0; i < L; i++) {
        const pre = `model.layers.${i}`;
        p.set(`layers.${i}.attentionNorm`, need(`${pre}.input_layernorm.weight`));
        for (const [k, n] of [['q', 'q_proj'], ['k', 'k_proj'], ['v', 'v_proj'], ['o', 'o_proj']])
          p.set(`layers.${i}.${k}`, lin(`${pre}.self_attn.${n}.weight`));
        p.set(`layers.${i}.ffnNorm`, need(`${pre}.post_attention_layernorm.weight`));
        for (const [k, n] of [['gate', 'gate_proj'], ['up', 'up_proj'], ['down', 'down_proj']])
          p.set(`layers.${i}.${k}`, lin(`${pre}.mlp.${n}.weight`));
      }
      p.set('finalNorm', need('model.norm.weight'));
      if (config.tie_word_embeddings !== true && tensor('lm_head.weight')) p.set('output', lin('lm_head.weight'));
      return { kind: 'llama', config: cfg, params: p };
    }
    case 'gpt2': {
      const d = int(config, 'n_embd', file);
      const L = int(config, 'n_layer', file);
      const prefix = tensor('transformer.wte.weight') ? 'transformer.' : '';
      const cfg: Gpt2Config = {
        architecture: 'gpt2',
        vocabSize: int(config, 'vocab_size', file),
        hiddenSize: d,
        numLayers: L,
        numHeads: int(config, 'n_head', file),
        intermediateSize: typeof config.n_inner === 'number' ? config.n_inner : 4 * d,
        maxPositions: int(config, 'n_positions', file),
        normEpsilon: num(config, 'layer_norm_epsilon', 1e-5),
        specialTokens: { eos: ids(config.eos_token_id), ...(typeof config.bos_token_id === 'number' ? { bos: config.bos_token_id } : {}) },
      };
      const p = new ParameterSet(file);
      const g = (n: string) => need(`${prefix}${n}`);
      p.set('wte', g('wte.weight'));
      p.set('wpe', g('wpe.weight'));
      for (let i = 0; i < L; i++) {
        const h = `h.${i}`;
        for (const [k, n] of [['norm1', 'ln_1'], ['norm2', 'ln_2']]) {
          p.set(`layers.${i}.${k}.weight`, g(`${h}.${n}.weight`));
          p.set(`layers.${i}.${k}.bias`, g(`${h}.${n}.bias`));
        }
        // Conv1D weights are stored [in, out] already
        for (const [k, n] of [['qkv', 'attn.c_attn'], ['out', 'attn.c_proj'], ['fc', 'mlp.c_fc'], ['proj', 'mlp.c_proj']]) {
          p.set(`layers.${i}.${k}`, g(`${h}.${n}.weight`));
          p.set(`layers.${i}.${k}.bias`, g(`${h}.${n}.bias`));
        }
      }
      p.set('finalNorm.weight', g('ln_f.weight'));
      p.set('finalNorm.bias', g('ln_f.bias'));
      return { kind: 'gpt2', config: cfg, params: p };
    }
    case 'marian':
    case 'bart':
    case 'mbart':
      return encoderDecoderFromHf(type, config, tensor, need, file);
    default:
      throw new UnsupportedError(
        `${file}: model_type ${JSON.stringify(type)}; kvt loads ${SUPPORTED_MODEL_TYPES.join(', ')} Hugging Face models.`,
      );
  }
}

const ACTIVATIONS: Record<string, EncoderDecoderConfig['activation']> = {
  swish: 'silu',
  silu: 'silu',
  relu: 'relu',
  gelu: 'gelu',
  gelu_new: 'gelu_tanh',
  gelu_pytorch_tanh: 'gelu_tanh',
};

function encoderDecoderFromHf(
  type: 'marian' | 'bart' | 'mbart',
  c: Json,
  tensor: TensorLookup,
  need: (n: string) => HostTensor,
  file: string,
): HfArchitecture {
  const d = int(c, 'd_model', file);
  const V = int(c, 'vocab_size', file);
  const targetV = typeof c.decoder_vocab_size === 'number' ? c.decoder_vocab_size : V;
  const act = ACTIVATIONS[String(c.activation_function ?? 'gelu')];
  if (!act) throw new UnsupportedError(`${file}: activation_function ${String(c.activation_function)} is not supported.`);
  if (int(c, 'encoder_ffn_dim', file) !== int(c, 'decoder_ffn_dim', file, int(c, 'encoder_ffn_dim', file)))
    throw new UnsupportedError(`${file}: encoder and decoder FFN sizes differ.`);
  if (int(c, 'encoder_attention_heads', file) !== int(c, 'decoder_attention_heads', file, int(c, 'encoder_attention_heads', file)))
    throw new UnsupportedError(`${file}: encoder and decoder head counts differ.`);
  const preNorm = c.normalize_before === true || type === 'mbart';
  const start = c.decoder_start_token_id ?? (type === 'marian' ? c.pad_token_id : c.eos_token_id);
  if (typeof start !== 'number') throw new InvalidOptionError('decoder_start_token_id', start, 'a token id in config.json');
  const config: EncoderDecoderConfig = {
    architecture: 'encoder-decoder',
    dModel: d,
    numHeads: int(c, 'encoder_attention_heads', file),
    encoderLayers: int(c, 'encoder_layers', file),
    decoderLayers: int(c, 'decoder_layers', file),
    ffnDim: int(c, 'encoder_ffn_dim', file),
    sourceVocabSize: V,
    targetVocabSize: targetV,
    maxPositions: int(c, 'max_position_embeddings', file),
    normPlacement: preNorm ? 'pre' : 'post',
    normEpsilon: 1e-5,
    activation: act,
    positions:
      type === 'marian'
        ? { kind: 'sinusoidal', layout: 'concat', denominator: 'half', offset: 0 }
        : { kind: 'learned', offset: 2 },
    scaleEmbedding: c.scale_embedding === true,
    embeddingNorm: type !== 'marian',
    encoderFinalNorm: preNorm,
    decoderFinalNorm: preNorm,
    specialTokens: {
      decoderStart: start,
      eos: ids(c.eos_token_id),
      ...(typeof c.pad_token_id === 'number' ? { pad: c.pad_token_id } : {}),
      ...(typeof c.bos_token_id === 'number' ? { bos: c.bos_token_id } : {}),
    },
  };
  const p = new ParameterSet(file);
  const shared = tensor('model.shared.weight');
  const srcEmb = tensor('model.encoder.embed_tokens.weight') ?? shared;
  const tgtEmb = tensor('model.decoder.embed_tokens.weight') ?? shared;
  if (!srcEmb || !tgtEmb) throw new ModelFormatError(file, 'tensor model.shared.weight (or model.encoder/decoder.embed_tokens.weight) is missing');
  p.set('sourceEmbedding', srcEmb);
  const sameTable = srcEmb === tgtEmb || (V === targetV && shared !== undefined && c.share_encoder_decoder_embeddings !== false);
  if (!sameTable) p.set('targetEmbedding', tgtEmb);
  const tied = c.tie_word_embeddings !== false;
  if (!tied) p.set('output', transpose2d(need('lm_head.weight')));
  const bias = tensor('final_logits_bias');
  if (bias) p.set('outputBias', hostTensor(bias.data, [bias.data.length]));
  for (const side of ['encoder', 'decoder'] as const) {
    const n = side === 'encoder' ? config.encoderLayers : config.decoderLayers;
    if (config.positions.kind === 'learned') p.set(`${side}.positions`, need(`model.${side}.embed_positions.weight`));
    if (config.embeddingNorm) {
      p.set(`${side}.embeddingNorm.weight`, need(`model.${side}.layernorm_embedding.weight`));
      p.set(`${side}.embeddingNorm.bias`, need(`model.${side}.layernorm_embedding.bias`));
    }
    for (let i = 0; i < n; i++) {
      const pre = `model.${side}.layers.${i}`;
      const t = `${side}.layers.${i}`;
      const attn = (hf: string, kvt: string) => {
        for (const [k, m] of [['q', 'q_proj'], ['k', 'k_proj'], ['v', 'v_proj'], ['o', 'out_proj']]) {
          p.set(`${t}.${kvt}.${k}`, transpose2d(need(`${pre}.${hf}.${m}.weight`)));
          const b = tensor(`${pre}.${hf}.${m}.bias`);
          if (b) p.set(`${t}.${kvt}.${k}.bias`, b);
        }
        p.set(`${t}.${kvt}Norm.weight`, need(`${pre}.${hf}_layer_norm.weight`));
        p.set(`${t}.${kvt}Norm.bias`, need(`${pre}.${hf}_layer_norm.bias`));
      };
      attn('self_attn', 'selfAttention');
      if (side === 'decoder') attn('encoder_attn', 'crossAttention');
      for (const [k, m] of [['up', 'fc1'], ['down', 'fc2']]) {
        p.set(`${t}.ffn.${k}`, transpose2d(need(`${pre}.${m}.weight`)));
        const b = tensor(`${pre}.${m}.bias`);
        if (b) p.set(`${t}.ffn.${k}.bias`, b);
      }
      p.set(`${t}.ffnNorm.weight`, need(`${pre}.final_layer_norm.weight`));
      p.set(`${t}.ffnNorm.bias`, need(`${pre}.final_layer_norm.bias`));
    }
    if (preNorm) {
      p.set(`${side}.finalNorm.weight`, need(`model.${side}.layer_norm.weight`));
      p.set(`${side}.finalNorm.bias`, need(`model.${side}.layer_norm.bias`));
    }
  }
  return { kind: 'encoder-decoder', config, params: p };
}

/** Generation defaults from `generation_config.json` (unknown keys ignored). */
export function generationDefaults(g: Json): GenerationOptions {
  const out: GenerationOptions = {};
  if (typeof g.max_new_tokens === 'number') out.maxNewTokens = g.max_new_tokens;
  if (typeof g.num_beams === 'number') out.numBeams = g.num_beams;
  if (typeof g.length_penalty === 'number') out.lengthPenalty = g.length_penalty;
  if (typeof g.repetition_penalty === 'number') out.repetitionPenalty = g.repetition_penalty;
  if (g.do_sample === true && typeof g.temperature === 'number') out.temperature = g.temperature;
  if (g.do_sample === true && typeof g.top_k === 'number') out.topK = g.top_k;
  if (g.do_sample === true && typeof g.top_p === 'number') out.topP = g.top_p;
  if (typeof g.early_stopping === 'boolean') out.earlyStopping = g.early_stopping;
  const eos = ids(g.eos_token_id);
  if (eos.length > 0) out.stopTokenIds = eos;
  return out;
}
