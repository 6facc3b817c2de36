import { InvalidOptionError, ResourceLimitError } from '../errors.js';
import type { ModelConfig } from '../contracts/model.js';
import type { LogitsProcessor } from './logits-processors.js';
import type { StoppingCriterion } from './stopping-criteria.js';

/**
 * Options shared by `generate` and `translate`. Every option is validated when the config is built
 * ({@link resolveGenerationConfig}); a bad value throws {@link InvalidOptionError} before any work starts. A model
 * loaded from a folder that declares generation settings (Hugging Face `generation_config.json`) brings its own
 * defaults for these; an option given here overrides them.
 *
 * Sampling happens when `temperature > 0`; with the default `temperature: 0` decoding is greedy (or beam search when
 * `numBeams > 1`).
 */
export interface GenerationOptions {
  /** Most tokens to generate per sequence (default 64, or fewer when the prompt leaves fewer positions). */
  maxNewTokens?: number;
  /** Fewest tokens to generate: end-of-sequence tokens are banned before (Hugging Face `min_new_tokens`; default 0). */
  minNewTokens?: number;
  /**
   * Most tokens in all, prompt included (decoder-only) or decoder inputs included, start token too (encoder-decoder):
   * Hugging Face's `max_length`. `maxNewTokens` wins when both are given.
   */
  maxLength?: number;
  /** Fewest tokens in all, counted as `maxLength` is: end-of-sequence tokens are banned before (default 0). */
  minLength?: number;
  /** 0 (default) = greedy; > 0 divides the logits before sampling. */
  temperature?: number;
  /** Keep only the k most likely tokens (0 = off, the default). */
  topK?: number;
  /** Keep the smallest set of tokens whose probability reaches topP, in (0, 1] (1 = off, the default). */
  topP?: number;
  /** Drop tokens less likely than minP × the most likely one, in [0, 1) (0 = off, the default). */
  minP?: number;
  /** > 1 discourages tokens already in the sequence (CTRL-style; 1 = off, the default). */
  repetitionPenalty?: number;
  /** Never repeat an n-gram of this size within a sequence (0 = off, the default). */
  noRepeatNgramSize?: number;
  /** Token sequences never to generate: a one-token entry bans that token, a longer one its last token after the rest. */
  badWordsIds?: readonly (readonly number[])[];
  /** Tokens never to generate. */
  suppressTokens?: readonly number[];
  /** Tokens not to generate as the first new token. */
  beginSuppressTokens?: readonly number[];
  /** Token forced right after the decoder start token (the first position of an empty sequence). */
  forcedBosTokenId?: number;
  /** Token forced as the last token when `maxNewTokens` is reached (one of the end-of-sequence ids, usually). */
  forcedEosTokenId?: number;
  /** Seed of the sampler's random numbers; the same seed gives the same output. A random one when omitted. */
  seed?: number;
  /** Tokens that end a sequence (default: the model's end-of-sequence ids). */
  stopTokenIds?: readonly number[];
  /** Texts that end a sequence; the result is cut before them, and so is the streamed text. Needs a tokenizer. */
  stopStrings?: readonly string[];
  /** Stop every sequence once generation has run this long, in ms (finish reason 'time'). */
  maxTimeMs?: number;
  /** Beams for beam search (default 1: no beam search). */
  numBeams?: number;
  /** Beam scores are sum(log p) / length^lengthPenalty (default 1). */
  lengthPenalty?: number;
  /** true: stop a beam group once numBeams hypotheses are done; false (default): stop when no beam can beat them; 'never': run to maxNewTokens. */
  earlyStopping?: boolean | 'never';
  /**
   * Outputs per input: with beam search the n best hypotheses (1..numBeams); with sampling n independent samples that
   * share the prompt's prefill (default 1).
   */
  numReturnSequences?: number;
  /** Report each chosen token's log-probability under the model's distribution (before any processor). */
  logprobs?: boolean;
  /** Also report the k most likely tokens at each step, with their log-probabilities (0 = off, the default). */
  topLogprobs?: number;
  /** Your own logits processors, run after kvt's and before temperature, top-k, top-p and min-p. */
  logitsProcessors?: readonly LogitsProcessor[];
  /** Your own stopping criteria, asked after every token of every sequence (finish reason 'criterion'). */
  stoppingCriteria?: readonly StoppingCriterion[];
}

/** A validated, complete generation config. */
export interface GenerationConfig {
  readonly maxNewTokens: number;
  readonly minNewTokens: number;
  readonly minLength: number;
  readonly temperature: number;
  readonly topK: number;
  readonly topP: number;
  readonly minP: number;
  readonly repetitionPenalty: number;
  readonly noRepeatNgramSize: number;
  readonly badWordsIds: readonly (readonly number[])[];
  readonly suppressTokens: readonly number[];
  readonly beginSuppressTokens: readonly number[];
  readonly forcedBosTokenId: number | null;
  readonly forcedEosTokenId: number | null;
  readonly seed: number;
  readonly stopTokenIds: readonly number[];
  readonly stopStrings: readonly string[];
  readonly maxTimeMs: number | null;
  readonly numBeams: number;
  readonly lengthPenalty: number;
  readonly earlyStopping: boolean | 'never';
  readonly numReturnSequences: number;
  readonly logprobs: boolean;
  readonly topLogprobs: number;
  readonly logitsProcessors: readonly LogitsProcessor[];
  readonly stoppingCriteria: readonly StoppingCriterion[];
  readonly sampling: boolean;
}

/** What a config is resolved against besides the options. */
export interface GenerationContext {
  /** Tokens `maxLength`/`minLength` count before the first new one: the longest prompt, or the decoder's start + prefix. */
  readonly promptLength?: number;
  /** Inputs (prompts or source sentences) in the batch, for the memory bound. */
  readonly inputs?: number;
  /** Options that came from the model's own generation settings: clamped to what fits, never an error for fitting. */
  readonly defaults?: GenerationOptions;
  /** Generation may run past the model's positions (a sliding window evicts old ones): maxNewTokens is not bounded by them. */
  readonly unboundedPositions?: boolean;
}

/** Most bytes of K/V cache and per-step logits one call may plan for (numBeams × inputs × positions …). */
export const GENERATION_MEMORY_LIMIT_BYTES = 2 ** 31;
/** The most top log-probabilities reported per step. */
export const MAX_TOP_LOGPROBS = 100;

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
/** The smallest temperature (and repetition penalty) that keeps float32 logits finite after dividing. */
const MIN_DIVISOR = 1e-6;

/**
 * Validates options against a model and fills in defaults (the model's declared ones, then kvt's).
 *
 * @example
 * ```ts
 * const config = resolveGenerationConfig({ temperature: 0.8, topP: 0.9, seed: 1 }, model.config);
 * ```
 */
export function resolveGenerationConfig(
  options: GenerationOptions,
  model: ModelConfig,
  context: GenerationContext = {},
): GenerationConfig {
  const d = context.defaults ?? {};
  const o = options;
  const pick = <K extends keyof GenerationOptions>(k: K): GenerationOptions[K] => (o[k] !== undefined ? o[k] : d[k]);
  /** The option's value, or `fallback` when neither the request nor the defaults give one (null is a value: wrong). */
  const val = <K extends keyof GenerationOptions>(k: K, fallback: NonNullable<GenerationOptions[K]>): NonNullable<GenerationOptions[K]> => {
    const v = pick(k);
    return (v === undefined ? fallback : v) as NonNullable<GenerationOptions[K]>;
  };
  const V = model.vocabSize;
  const promptLength = context.promptLength ?? 0;
  const tokenId = (name: keyof GenerationOptions, v: unknown): number => {
    if (!isInt(v) || v < 0 || v >= V) throw new InvalidOptionError(name, v, `a token id in [0, ${V})`);
    return v;
  };
  const tokenIds = (name: keyof GenerationOptions, v: unknown): number[] => {
    if (!Array.isArray(v)) throw new InvalidOptionError(name, v, `an array of token ids in [0, ${V})`);
    return v.map((t) => tokenId(name, t));
  };

  // Length: explicit options beat the model's defaults; within one source maxNewTokens beats maxLength. The last
  // generated token is never fed back, so P + N − 1 positions are used.
  const room = model.maxPositions - promptLength + 1;
  const lengthFrom = (src: GenerationOptions, explicit: boolean): number | undefined => {
    if (src.maxNewTokens !== undefined) {
      if (!isInt(src.maxNewTokens) || src.maxNewTokens < 1) throw new InvalidOptionError('maxNewTokens', src.maxNewTokens, 'an integer ≥ 1');
      return explicit ? src.maxNewTokens : Math.min(src.maxNewTokens, Math.max(1, room));
    }
    if (src.maxLength !== undefined) {
      if (!isInt(src.maxLength) || src.maxLength < 1) throw new InvalidOptionError('maxLength', src.maxLength, 'an integer ≥ 1');
      if (src.maxLength <= promptLength && explicit)
        throw new InvalidOptionError('maxLength', src.maxLength, `more than the ${promptLength} tokens already given (it counts them); or use maxNewTokens`);
      return Math.max(1, Math.min(src.maxLength - promptLength, explicit ? Infinity : room));
    }
    return undefined;
  };
  const maxNewTokens = lengthFrom(o, true) ?? lengthFrom(d, false) ?? Math.max(1, Math.min(64, room, model.maxPositions));
  if (maxNewTokens > model.maxPositions && !context.unboundedPositions)
    throw new InvalidOptionError('maxNewTokens', maxNewTokens, `at most the model's ${model.maxPositions} positions (or a sliding window)`);
  const minNewTokens = val('minNewTokens', 0);
  if (!isInt(minNewTokens) || minNewTokens < 0) throw new InvalidOptionError('minNewTokens', minNewTokens, 'an integer ≥ 0');
  const minLength = val('minLength', 0);
  if (!isInt(minLength) || minLength < 0) throw new InvalidOptionError('minLength', minLength, 'an integer ≥ 0');

  const temperature = val('temperature', 0);
  if (!isNum(temperature) || temperature < 0 || (temperature > 0 && temperature < MIN_DIVISOR))
    throw new InvalidOptionError('temperature', temperature, `0 (greedy) or a number ≥ ${MIN_DIVISOR}`);
  const topK = val('topK', 0);
  if (!isInt(topK) || topK < 0) throw new InvalidOptionError('topK', topK, 'an integer ≥ 0 (0 = off)');
  const topP = val('topP', 1);
  if (!isNum(topP) || topP <= 0 || topP > 1) throw new InvalidOptionError('topP', topP, 'a number in (0, 1]');
  const minP = val('minP', 0);
  if (!isNum(minP) || minP < 0 || minP >= 1) throw new InvalidOptionError('minP', minP, 'a number in [0, 1)');
  const repetitionPenalty = val('repetitionPenalty', 1);
  if (!isNum(repetitionPenalty) || repetitionPenalty < MIN_DIVISOR || repetitionPenalty > 1 / MIN_DIVISOR)
    throw new InvalidOptionError('repetitionPenalty', repetitionPenalty, `a number in [${MIN_DIVISOR}, ${1 / MIN_DIVISOR}] (1 = off)`);
  const noRepeatNgramSize = val('noRepeatNgramSize', 0);
  if (!isInt(noRepeatNgramSize) || noRepeatNgramSize < 0)
    throw new InvalidOptionError('noRepeatNgramSize', noRepeatNgramSize, 'an integer ≥ 0 (0 = off)');
  const badWords = val('badWordsIds', []);
  if (!Array.isArray(badWords)) throw new InvalidOptionError('badWordsIds', badWords, 'an array of token-id arrays');
  const badWordsIds = badWords.map((w) => {
    if (!Array.isArray(w) || w.length === 0) throw new InvalidOptionError('badWordsIds', w, 'non-empty arrays of token ids');
    return Object.freeze(tokenIds('badWordsIds', w));
  });
  const suppressTokens = tokenIds('suppressTokens', val('suppressTokens', []));
  const beginSuppressTokens = tokenIds('beginSuppressTokens', val('beginSuppressTokens', []));
  const forcedBos = pick('forcedBosTokenId');
  const forcedBosTokenId = forcedBos === undefined ? null : tokenId('forcedBosTokenId', forcedBos);
  const forcedEos = pick('forcedEosTokenId');
  const forcedEosTokenId = forcedEos === undefined ? null : tokenId('forcedEosTokenId', forcedEos);

  const seed = val('seed', Math.floor(Math.random() * 2 ** 32));
  if (!isInt(seed) || seed < 0 || seed >= 2 ** 32) throw new InvalidOptionError('seed', seed, 'an integer in [0, 2^32)');
  const stopTokenIds = tokenIds('stopTokenIds', val('stopTokenIds', model.specialTokens.eos));
  const stopStrings = val('stopStrings', []);
  if (!Array.isArray(stopStrings) || stopStrings.some((s) => typeof s !== 'string' || s.length === 0))
    throw new InvalidOptionError('stopStrings', stopStrings, 'an array of non-empty strings');
  const maxTime = pick('maxTimeMs');
  if (maxTime !== undefined && (!isNum(maxTime) || maxTime <= 0)) throw new InvalidOptionError('maxTimeMs', maxTime, 'a number of ms > 0');

  const numBeams = val('numBeams', 1);
  if (!isInt(numBeams) || numBeams < 1 || numBeams > V)
    throw new InvalidOptionError('numBeams', numBeams, `an integer in [1, ${V}] (the vocabulary)`);
  const lengthPenalty = val('lengthPenalty', 1);
  if (!isNum(lengthPenalty)) throw new InvalidOptionError('lengthPenalty', lengthPenalty, 'a finite number');
  const earlyStopping = val('earlyStopping', false);
  if (earlyStopping !== true && earlyStopping !== false && earlyStopping !== 'never')
    throw new InvalidOptionError('earlyStopping', earlyStopping, "true, false or 'never'");
  const sampling = temperature > 0;
  if (sampling && numBeams > 1)
    throw new InvalidOptionError('numBeams', numBeams, '1 when sampling (temperature > 0); beam search is deterministic');
  const numReturnSequences = val('numReturnSequences', 1);
  if (numBeams > 1) {
    if (!isInt(numReturnSequences) || numReturnSequences < 1 || numReturnSequences > numBeams)
      throw new InvalidOptionError('numReturnSequences', numReturnSequences, `an integer in [1, numBeams = ${numBeams}]`);
  } else if (!isInt(numReturnSequences) || numReturnSequences < 1 || (!sampling && numReturnSequences > 1)) {
    throw new InvalidOptionError(
      'numReturnSequences',
      numReturnSequences,
      sampling ? 'an integer ≥ 1' : '1 for greedy decoding (every output would be the same): sample (temperature > 0) or use numBeams',
    );
  }
  if (numBeams > 1 && stopStrings.length > 0)
    throw new InvalidOptionError('stopStrings', stopStrings, 'none with beam search (numBeams > 1): end beams with stopTokenIds');

  const logprobs = val('logprobs', false);
  if (typeof logprobs !== 'boolean') throw new InvalidOptionError('logprobs', logprobs, 'true or false');
  const topLogprobs = val('topLogprobs', 0);
  if (!isInt(topLogprobs) || topLogprobs < 0 || topLogprobs > Math.min(V, MAX_TOP_LOGPROBS))
    throw new InvalidOptionError('topLogprobs', topLogprobs, `an integer in [0, ${Math.min(V, MAX_TOP_LOGPROBS)}]`);
  const logitsProcessors = functions<LogitsProcessor>('logitsProcessors', pick('logitsProcessors'));
  const stoppingCriteria = functions<StoppingCriterion>('stoppingCriteria', pick('stoppingCriteria'));
  if (numBeams > 1 && stoppingCriteria.length > 0)
    throw new InvalidOptionError('stoppingCriteria', stoppingCriteria, 'none with beam search (numBeams > 1)');

  checkGenerationMemory(model, (context.inputs ?? 1) * Math.max(numBeams, numReturnSequences), context.unboundedPositions ? model.maxPositions : promptLength + maxNewTokens);
  return Object.freeze({
    maxNewTokens, minNewTokens, minLength, temperature, topK, topP, minP, repetitionPenalty, noRepeatNgramSize,
    badWordsIds: Object.freeze(badWordsIds), suppressTokens: Object.freeze(suppressTokens),
    beginSuppressTokens: Object.freeze(beginSuppressTokens), forcedBosTokenId, forcedEosTokenId, seed,
    stopTokenIds: Object.freeze(stopTokenIds), stopStrings: Object.freeze([...stopStrings]), maxTimeMs: maxTime ?? null,
    numBeams, lengthPenalty, earlyStopping, numReturnSequences, logprobs, topLogprobs,
    logitsProcessors: Object.freeze(logitsProcessors), stoppingCriteria: Object.freeze(stoppingCriteria), sampling,
  });
}

function functions<T>(name: keyof GenerationOptions, v: unknown): T[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((f) => typeof f !== 'function'))
    throw new InvalidOptionError(name, v, 'an array of functions');
  return [...v] as T[];
}

/**
 * Rejects a call whose rows would need more than {@link GENERATION_MEMORY_LIMIT_BYTES} of K/V cache and logits,
 * before anything is allocated.
 */
export function checkGenerationMemory(model: ModelConfig, rows: number, positions: number): void {
  const cachePerPosition = 2 * model.numLayers * model.numKvHeads * model.headDim * 4;
  const logitsPerRow = model.vocabSize * (4 + 8); // float32 read back, float64 processing
  const bytes = rows * (Math.min(positions, model.maxPositions) * cachePerPosition + logitsPerRow);
  if (bytes > GENERATION_MEMORY_LIMIT_BYTES)
    throw new ResourceLimitError(
      `${rows} rows (inputs × beams or samples) over ${positions} positions need about ${(bytes / 2 ** 20).toFixed(0)} MiB ` +
        `of cache and logits; the limit is ${GENERATION_MEMORY_LIMIT_BYTES / 2 ** 20} MiB. Use fewer beams or samples, ` +
        'fewer inputs per call, or fewer new tokens.',
      bytes,
      GENERATION_MEMORY_LIMIT_BYTES,
    );
}
