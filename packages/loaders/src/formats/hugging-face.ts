import { ModelFormatError, UnsupportedError, type GenerationOptions } from '@kvt/core';
import {
  ParameterSet,
  hostTensor,
  transpose2d,
  type EncoderDecoderConfig,
  type Gpt2Config,
  type HostTensor,
  type LlamaConfig,
  type QuantizedHostTensor,
} from '@kvt/models';
import type { ParsedCheckpoint } from './llama2c.js';

/** Reads a tensor by its Hugging Face name (across shards), or undefined when absent. */
export type TensorLookup = (name: string) => HostTensor | undefined;

/** A tensor stored quantized (rows `[out, in]` as the file holds them), by its Hugging Face name; else undefined. */
export type QuantizedLookup = (name: string) => QuantizedHostTensor | undefined;

/** Sets a parameter that may be stored quantized. */
function put(p: ParameterSet, name: string, t: HostTensor | QuantizedHostTensor): void {
  if ('format' in t) p.setQuantized(name, t);
  else p.set(name, t);
}

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
/** A number the config may leave out (or set to null): present, it must be a finite number. */
function num(c: Json, key: string, fallback: number, file = 'config.json'): number {
  const v = c[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ModelFormatError(file, `${key} is ${JSON.stringify(v)}; expected a number`);
  return v;
}
/** A token id or list of them (eos_token_id), or none. */
function ids(c: Json, key: string, file = 'config.json'): number[] {
  const v = c[key];
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  if (list.some((x) => typeof x !== 'number' || !Number.isInteger(x))) throw new ModelFormatError(file, `${key} is ${JSON.stringify(v)}; expected a token id or a list of them`);
  return list as number[];
}
/** One optional token id (bos_token_id, pad_token_id) as a special-tokens field. */
function optionalId<K extends string>(c: Json, key: string, field: K, file = 'config.json'): { [P in K]?: number } {
  const v = c[key];
  if (v === undefined || v === null) return {};
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new ModelFormatError(file, `${key} is ${JSON.stringify(v)}; expected a token id`);
  return { [field]: v } as { [P in K]?: number };
}

/**
 * Maps a Hugging Face `config.json` and its tensors to a kvt architecture. `model_type` selects it: llama, gpt2,
 * marian, bart, mbart. Linear weights `[out, in]` are transposed to kvt's `[in, out]` (GPT-2's Conv1D already is).
 *
 * @example
 * ```ts
 * const arch = fromHuggingFace(config, (name) => tensors.get(name), 'config.json');
 * ```
 */
export function fromHuggingFace(
  config: Json,
  tensor: TensorLookup,
  file = 'config.json',
  generation?: Json,
  quantized: QuantizedLookup = () => undefined,
): HfArchitecture {
  const type = config.model_type;
  const need = (name: string): HostTensor => {
    const t = tensor(name);
    if (!t) throw new ModelFormatError(file.replace(/config\.json$/, 'model.safetensors'), `tensor ${name} is missing`);
    return t;
  };
  /** The checkpoint must not hold more layers than the config names: they would be dropped silently. */
  const noExtraLayer = (key: string, layers: number, probe: string) => {
    if (tensor(probe)) throw new ModelFormatError(file, `${key} is ${layers}, but the weights hold a layer ${layers} (${probe}); fix ${key}`);
  };
  // a linear weight [out, in] → kvt's [in, out]; stored quantized, it stays as stored (rows [out, in])
  const lin = (name: string): HostTensor | QuantizedHostTensor => {
    const q = quantized(name);
    return q ? { ...q, transposed: true } : transpose2d(need(name));
  };
  /** An embedding table, quantized as stored or float32. */
  const table = (name: string): HostTensor | QuantizedHostTensor => quantized(name) ?? need(name);
  switch (type) {
    case 'llama': {
      const d = int(config, 'hidden_size', file);
      const H = int(config, 'num_attention_heads', file);
      const L = int(config, 'num_hidden_layers', file);
      noExtraLayer('num_hidden_layers', L, `model.layers.${L}.input_layernorm.weight`);
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
        specialTokens: { ...optionalId(config, 'bos_token_id', 'bos'), eos: ids(config, 'eos_token_id'), ...optionalId(config, 'pad_token_id', 'pad') },
      };
      const p = new ParameterSet(file);
      put(p, 'embedding', table('model.embed_tokens.weight'));
      for (let i = 0; i < L; i++) {
        const pre = `model.layers.${i}`;
        p.set(`layers.${i}.attentionNorm`, need(`${pre}.input_layernorm.weight`));
        for (const [k, n] of [['q', 'q_proj'], ['k', 'k_proj'], ['v', 'v_proj'], ['o', 'o_proj']])
          put(p, `layers.${i}.${k}`, lin(`${pre}.self_attn.${n}.weight`));
        p.set(`layers.${i}.ffnNorm`, need(`${pre}.post_attention_layernorm.weight`));
        for (const [k, n] of [['gate', 'gate_proj'], ['up', 'up_proj'], ['down', 'down_proj']])
          put(p, `layers.${i}.${k}`, lin(`${pre}.mlp.${n}.weight`));
      }
      p.set('finalNorm', need('model.norm.weight'));
      if (config.tie_word_embeddings !== true && tensor('lm_head.weight')) put(p, 'output', lin('lm_head.weight'));
      return { kind: 'llama', config: cfg, params: p };
    }
    case 'gpt2': {
      const d = int(config, 'n_embd', file);
      const L = int(config, 'n_layer', file);
      const prefix = tensor('transformer.wte.weight') ? 'transformer.' : '';
      noExtraLayer('n_layer', L, `${prefix}h.${L}.ln_1.weight`);
      const cfg: Gpt2Config = {
        architecture: 'gpt2',
        vocabSize: int(config, 'vocab_size', file),
        hiddenSize: d,
        numLayers: L,
        numHeads: int(config, 'n_head', file),
        intermediateSize: config.n_inner === undefined || config.n_inner === null ? 4 * d : int(config, 'n_inner', file),
        maxPositions: int(config, 'n_positions', file),
        normEpsilon: num(config, 'layer_norm_epsilon', 1e-5),
        specialTokens: { eos: ids(config, 'eos_token_id'), ...optionalId(config, 'bos_token_id', 'bos'), ...optionalId(config, 'pad_token_id', 'pad') },
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
      for (const side of ['encoder', 'decoder'] as const)
        noExtraLayer(`${side}_layers`, int(config, `${side}_layers`, file), `model.${side}.layers.${int(config, `${side}_layers`, file)}.fc1.weight`);
      return encoderDecoderFromHf(type, config, tensor, need, lin, quantized, file, generation);
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
  lin: (n: string) => HostTensor | QuantizedHostTensor,
  quantized: QuantizedLookup,
  file: string,
  generation: Json | undefined,
): HfArchitecture {
  const d = int(c, 'd_model', file);
  const V = int(c, 'vocab_size', file);
  const targetV = c.decoder_vocab_size === undefined || c.decoder_vocab_size === null ? V : int(c, 'decoder_vocab_size', file);
  const act = ACTIVATIONS[String(c.activation_function ?? 'gelu')];
  if (!act) throw new UnsupportedError(`${file}: activation_function ${String(c.activation_function)} is not supported.`);
  if (int(c, 'encoder_ffn_dim', file) !== int(c, 'decoder_ffn_dim', file, int(c, 'encoder_ffn_dim', file)))
    throw new UnsupportedError(`${file}: encoder and decoder FFN sizes differ.`);
  if (int(c, 'encoder_attention_heads', file) !== int(c, 'decoder_attention_heads', file, int(c, 'encoder_attention_heads', file)))
    throw new UnsupportedError(`${file}: encoder and decoder head counts differ.`);
  const preNorm = c.normalize_before === true || type === 'mbart';
  // generation_config.json's decoder start takes precedence over config.json's (as in transformers)
  const start = generation?.decoder_start_token_id ?? c.decoder_start_token_id ?? (type === 'marian' ? c.pad_token_id : c.eos_token_id);
  if (typeof start !== 'number') throw new ModelFormatError(file, `decoder_start_token_id is ${JSON.stringify(start)}; expected a token id`);
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
    specialTokens: { decoderStart: start, eos: ids(c, 'eos_token_id'), ...optionalId(c, 'pad_token_id', 'pad'), ...optionalId(c, 'bos_token_id', 'bos') },
  };
  const p = new ParameterSet(file);
  const shared = tensor('model.shared.weight');
  const srcName = tensor('model.encoder.embed_tokens.weight') ? 'model.encoder.embed_tokens.weight' : 'model.shared.weight';
  const tgtName = tensor('model.decoder.embed_tokens.weight') ? 'model.decoder.embed_tokens.weight' : 'model.shared.weight';
  const srcEmb = tensor(srcName);
  const tgtEmb = tensor(tgtName);
  if (!srcEmb || !tgtEmb) throw new ModelFormatError(file, 'tensor model.shared.weight (or model.encoder/decoder.embed_tokens.weight) is missing');
  // an embedding stored quantized stays so (the tied output projection multiplies its rows)
  put(p, 'sourceEmbedding', quantized(srcName) ?? srcEmb);
  const sameTable = srcName === tgtName || (V === targetV && shared !== undefined && c.share_encoder_decoder_embeddings !== false);
  if (!sameTable) put(p, 'targetEmbedding', quantized(tgtName) ?? tgtEmb);
  const tied = c.tie_word_embeddings !== false;
  if (!tied) put(p, 'output', lin('lm_head.weight'));
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
          put(p, `${t}.${kvt}.${k}`, lin(`${pre}.${hf}.${m}.weight`));
          const b = tensor(`${pre}.${hf}.${m}.bias`);
          if (b) p.set(`${t}.${kvt}.${k}.bias`, b);
        }
        p.set(`${t}.${kvt}Norm.weight`, need(`${pre}.${hf}_layer_norm.weight`));
        p.set(`${t}.${kvt}Norm.bias`, need(`${pre}.${hf}_layer_norm.bias`));
      };
      attn('self_attn', 'selfAttention');
      if (side === 'decoder') attn('encoder_attn', 'crossAttention');
      for (const [k, m] of [['up', 'fc1'], ['down', 'fc2']]) {
        put(p, `${t}.ffn.${k}`, lin(`${pre}.${m}.weight`));
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

/** The Hugging Face generation keys kvt applies, and the option each becomes. */
export const HF_GENERATION_KEYS: Readonly<Record<string, keyof GenerationOptions>> = {
  max_new_tokens: 'maxNewTokens', max_length: 'maxLength', min_new_tokens: 'minNewTokens', min_length: 'minLength',
  temperature: 'temperature', top_k: 'topK', top_p: 'topP', min_p: 'minP', repetition_penalty: 'repetitionPenalty',
  no_repeat_ngram_size: 'noRepeatNgramSize', bad_words_ids: 'badWordsIds', suppress_tokens: 'suppressTokens',
  begin_suppress_tokens: 'beginSuppressTokens', forced_bos_token_id: 'forcedBosTokenId', forced_eos_token_id: 'forcedEosTokenId',
  eos_token_id: 'stopTokenIds', num_beams: 'numBeams', length_penalty: 'lengthPenalty', early_stopping: 'earlyStopping',
  num_return_sequences: 'numReturnSequences', max_time: 'maxTimeMs',
};

/**
 * The generation settings of a Hugging Face `generation_config.json` (or of the generation keys of an older
 * `config.json`), with `model.generate()`'s semantics: sampling settings apply only with `do_sample: true` (then
 * `temperature` defaults to 1 and `top_k` to 50, as in transformers), `max_time` is seconds, a list
 * `forced_eos_token_id` forces its lowest id (what greedy decoding picks among them). Values are checked when the
 * model loads ({@link checkGenerationDefaults}); keys kvt does not apply are ignored.
 *
 * @example
 * ```ts
 * generationDefaults({ num_beams: 4, max_length: 128, bad_words_ids: [[58100]] });
 * // { numBeams: 4, maxLength: 128, badWordsIds: [[58100]] }
 * ```
 */
export function generationDefaults(g: Json): GenerationOptions {
  const out: Record<string, unknown> = {};
  const sampling = g.do_sample === true;
  for (const [key, option] of Object.entries(HF_GENERATION_KEYS)) {
    let v = g[key];
    if (v === undefined || v === null) continue;
    if (['temperature', 'top_k', 'top_p', 'min_p'].includes(key) && !sampling) continue;
    if (key === 'eos_token_id' || key === 'suppress_tokens' || key === 'begin_suppress_tokens') v = typeof v === 'number' ? [v] : v;
    if (key === 'forced_eos_token_id' && Array.isArray(v)) v = v.every((x) => typeof x === 'number') && v.length > 0 ? Math.min(...v) : v;
    if (key === 'max_time') v = typeof v === 'number' ? v * 1000 : v;
    out[option] = v;
  }
  if (sampling) {
    out.temperature ??= 1;
    out.topK ??= 50;
  }
  return out as GenerationOptions;
}

/** The Hugging Face key an option came from, for messages about a model's files. */
export function hfKeyOf(option: string): string {
  return Object.entries(HF_GENERATION_KEYS).find(([, o]) => o === option)?.[0] ?? option;
}
