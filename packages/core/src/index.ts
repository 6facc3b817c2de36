/**
 * @kvt/core: the contracts (Cache, Model, Tokenizer), the decoding loops (greedy, sampling, beam search, streaming,
 * abort) for decoder-only generation and encoder-decoder translation, and typed errors. No compute library inside.
 *
 * @packageDocumentation
 */
export * from './errors.js';
export type * from './contracts/cache.js';
export { KV_DTYPES } from './contracts/cache.js';
export type * from './contracts/model.js';
export type { Tokenizer, StreamDecoder } from './contracts/tokenizer.js';
export { createIncrementalDecoder } from './contracts/tokenizer.js';
export {
  GENERATION_MEMORY_LIMIT_BYTES,
  MAX_TOP_LOGPROBS,
  resolveGenerationConfig,
  type GenerationConfig,
  type GenerationContext,
  type GenerationOptions,
} from './generation/config.js';
export { GENERATION_OPTIONS } from './generation/option-names.js';
export {
  beginSuppressTokens,
  buildLogitsProcessors,
  forcedBos,
  forcedEos,
  logSoftmax,
  minLength,
  minNewTokens,
  noBadWords,
  noRepeatNgram,
  repetitionPenalty,
  softmax,
  suppressTokens,
  temperature,
  topK,
  type LogitsProcessor,
  type ProcessorContext,
} from './generation/logits-processors.js';
export { TokenDistribution, buildWarpers, minP, topP, type DistributionWarper } from './generation/distribution.js';
export { argmax, sampleFromLogits } from './generation/sampler.js';
export type { FinishReason, SequenceState, StoppingCriterion } from './generation/stopping-criteria.js';
export { SequenceText } from './generation/sequence-text.js';
export type { BeamEvent, GenerationEvent, TokenEvent, TokenLogprob } from './generation/events.js';
export type { Hypothesis } from './generation/beam-search.js';
export { yieldToEventLoop } from './generation/yield.js';
export { createRng, type Rng } from './generation/rng.js';
export { tokensPerSecond } from './generation/pipeline.js';
export type { CacheMode } from './generation/session.js';
export {
  generate,
  generateStream,
  type GenerateRequest,
  type GenerateResult,
  type GeneratedHypothesis,
  type GeneratedSequence,
} from './generation/generate.js';
export {
  GenerationSession,
  createSession,
  resumeSession,
  type SessionCacheMode,
  type SessionOptions,
  type SessionRequest,
  type SessionResult,
} from './generation/generation-session.js';
export { PrefixCache, createPrefixCache, type PrefixCacheOptions, type PrefixCacheStats } from './generation/prefix-cache.js';
export {
  translate,
  translateStream,
  type TranslateRequest,
  type TranslateResult,
  type Translation,
  type TranslationHypothesis,
} from './generation/translate.js';
