/**
 * @kvt/core: the contracts (Cache, Model, Tokenizer), the decoding loops (greedy, sampling, beam search, streaming,
 * abort) for decoder-only generation and encoder-decoder translation, and typed errors. No compute library inside.
 *
 * @packageDocumentation
 */
export * from './errors.js';
export type * from './contracts/cache.js';
export type * from './contracts/model.js';
export type { Tokenizer, StreamDecoder } from './contracts/tokenizer.js';
export { createDiffStreamDecoder } from './contracts/tokenizer.js';
export { resolveGenerationConfig, type GenerationConfig, type GenerationOptions } from './generation/config.js';
export {
  buildLogitsProcessors,
  logSoftmax,
  minP,
  repetitionPenalty,
  softmax,
  temperature,
  topK,
  topP,
  type LogitsProcessor,
} from './generation/logits-processors.js';
export { argmax, sampleFromLogits } from './generation/sampler.js';
export { yieldToEventLoop } from './generation/yield.js';
export { createRng, type Rng } from './generation/rng.js';
export type { FinishReason, Hypothesis, TokenEvent } from './generation/decode-loops.js';
export { tokensPerSecond } from './generation/decode-loops.js';
export type { CacheMode } from './generation/session.js';
export { generate, generateStream, type GenerateRequest, type GenerateResult, type GeneratedSequence } from './generation/generate.js';
export {
  translate,
  translateStream,
  type TranslateRequest,
  type TranslateResult,
  type Translation,
  type TranslationHypothesis,
} from './generation/translate.js';
