import { InvalidOptionError } from '../errors.js';
import type { ModelConfig } from '../contracts/model.js';

/**
 * Options shared by `generate` and `translate`. Every option is validated when the config is built
 * ({@link resolveGenerationConfig}); a bad value throws {@link InvalidOptionError} before any work starts.
 *
 * Sampling happens when `temperature > 0`; with the default `temperature: 0` decoding is greedy (or beam search when
 * `numBeams > 1`).
 */
export interface GenerationOptions {
  /** Most tokens to generate per sequence (default 64, or fewer when the prompt leaves fewer positions). */
  maxNewTokens?: number;
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
  /** Seed of the sampler's random numbers; the same seed gives the same output. A random one when omitted. */
  seed?: number;
  /** Tokens that end a sequence (default: the model's end-of-sequence ids). */
  stopTokenIds?: readonly number[];
  /** Texts that end a sequence; the result is cut before them. Needs a tokenizer. */
  stopStrings?: readonly string[];
  /** Beams for beam search (default 1: no beam search). */
  numBeams?: number;
  /** Beam scores are sum(log p) / length^lengthPenalty (default 1). */
  lengthPenalty?: number;
  /** true: stop a beam group once numBeams hypotheses are done; false (default): stop when no beam can beat them; 'never': run to maxNewTokens. */
  earlyStopping?: boolean | 'never';
  /** Hypotheses returned per input with beam search, 1..numBeams (default 1). */
  numReturnSequences?: number;
}

/** A validated, complete generation config. */
export interface GenerationConfig {
  readonly maxNewTokens: number;
  readonly temperature: number;
  readonly topK: number;
  readonly topP: number;
  readonly minP: number;
  readonly repetitionPenalty: number;
  readonly seed: number;
  readonly stopTokenIds: readonly number[];
  readonly stopStrings: readonly string[];
  readonly numBeams: number;
  readonly lengthPenalty: number;
  readonly earlyStopping: boolean | 'never';
  readonly numReturnSequences: number;
  readonly sampling: boolean;
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/**
 * Validates options against a model and fills in defaults.
 *
 * @example
 * ```ts
 * const config = resolveGenerationConfig({ temperature: 0.8, topP: 0.9, seed: 1 }, model.config);
 * ```
 */
export function resolveGenerationConfig(
  options: GenerationOptions,
  model: ModelConfig,
  promptLength = 0,
): GenerationConfig {
  const o = options;
  // The default fits what the prompt leaves of the model's positions; an explicit value is checked, never clamped.
  const maxNewTokens = o.maxNewTokens ?? Math.max(1, Math.min(64, model.maxPositions - promptLength));
  if (!isInt(maxNewTokens) || maxNewTokens < 1)
    throw new InvalidOptionError('maxNewTokens', o.maxNewTokens, 'an integer ≥ 1');
  if (maxNewTokens > model.maxPositions)
    throw new InvalidOptionError('maxNewTokens', maxNewTokens, `at most the model's ${model.maxPositions} positions`);
  const temperature = o.temperature ?? 0;
  if (!isNum(temperature) || temperature < 0)
    throw new InvalidOptionError('temperature', o.temperature, 'a number ≥ 0 (0 = greedy)');
  const topK = o.topK ?? 0;
  if (!isInt(topK) || topK < 0) throw new InvalidOptionError('topK', o.topK, 'an integer ≥ 0 (0 = off)');
  const topP = o.topP ?? 1;
  if (!isNum(topP) || topP <= 0 || topP > 1) throw new InvalidOptionError('topP', o.topP, 'a number in (0, 1]');
  const minP = o.minP ?? 0;
  if (!isNum(minP) || minP < 0 || minP >= 1) throw new InvalidOptionError('minP', o.minP, 'a number in [0, 1)');
  const repetitionPenalty = o.repetitionPenalty ?? 1;
  if (!isNum(repetitionPenalty) || repetitionPenalty <= 0)
    throw new InvalidOptionError('repetitionPenalty', o.repetitionPenalty, 'a number > 0 (1 = off)');
  const seed = o.seed ?? Math.floor(Math.random() * 2 ** 32);
  if (!isInt(seed) || seed < 0 || seed >= 2 ** 32)
    throw new InvalidOptionError('seed', o.seed, 'an integer in [0, 2^32)');
  const stopTokenIds = o.stopTokenIds ?? model.specialTokens.eos;
  if (!Array.isArray(stopTokenIds) || stopTokenIds.some((t) => !isInt(t) || t < 0 || t >= model.vocabSize))
    throw new InvalidOptionError('stopTokenIds', o.stopTokenIds, `token ids in [0, ${model.vocabSize})`);
  const stopStrings = o.stopStrings ?? [];
  if (!Array.isArray(stopStrings) || stopStrings.some((s) => typeof s !== 'string' || s.length === 0))
    throw new InvalidOptionError('stopStrings', o.stopStrings, 'non-empty strings');
  const numBeams = o.numBeams ?? 1;
  if (!isInt(numBeams) || numBeams < 1) throw new InvalidOptionError('numBeams', o.numBeams, 'an integer ≥ 1');
  const lengthPenalty = o.lengthPenalty ?? 1;
  if (!isNum(lengthPenalty)) throw new InvalidOptionError('lengthPenalty', o.lengthPenalty, 'a finite number');
  const earlyStopping = o.earlyStopping ?? false;
  if (earlyStopping !== true && earlyStopping !== false && earlyStopping !== 'never')
    throw new InvalidOptionError('earlyStopping', o.earlyStopping, "true, false or 'never'");
  const numReturnSequences = o.numReturnSequences ?? 1;
  if (!isInt(numReturnSequences) || numReturnSequences < 1 || numReturnSequences > numBeams)
    throw new InvalidOptionError('numReturnSequences', o.numReturnSequences, `an integer in [1, numBeams = ${numBeams}]`);
  const sampling = temperature > 0;
  if (sampling && numBeams > 1)
    throw new InvalidOptionError('numBeams', numBeams, '1 when sampling (temperature > 0); beam search is deterministic');
  return Object.freeze({
    maxNewTokens, temperature, topK, topP, minP, repetitionPenalty, seed,
    stopTokenIds: Object.freeze([...stopTokenIds]), stopStrings: Object.freeze([...stopStrings]),
    numBeams, lengthPenalty, earlyStopping, numReturnSequences, sampling,
  });
}
