import type { EncoderDecoderCache } from '../contracts/cache.js';
import type { EncoderDecoderModel, EncoderState } from '../contracts/model.js';
import type { Tokenizer } from '../contracts/tokenizer.js';
import { AbortedError, CacheStateError, InvalidOptionError, TokenOutOfRangeError } from '../errors.js';
import { BeamSearchStrategy } from './beam-search.js';
import { checkGenerationMemory, resolveGenerationConfig, type GenerationConfig, type GenerationOptions } from './config.js';
import type { TokenDistribution } from './distribution.js';
import type { GenerationEvent, TokenEvent, TokenLogprob } from './events.js';
import { abortChecker, asBatch, checkRequest, validateIdBatch } from './inputs.js';
import { TRANSLATE_OPTIONS, rejectUnknownOptions } from './option-names.js';
import { decodeLoop, fanOut } from './pipeline.js';
import { SamplingStrategy } from './sampling-strategy.js';
import { encoderDecoderSession, type CacheMode, type DecodingSession } from './session.js';
import type { FinishReason } from './stopping-criteria.js';

/** A request to {@link translate} / {@link translateStream}. Give `sourceIds`, or `text` with tokenizers. */
export interface TranslateRequest extends GenerationOptions {
  /** Source ids: one sentence or a batch. */
  sourceIds?: readonly number[] | readonly (readonly number[])[];
  /** Source text: one sentence or a batch. */
  text?: string | readonly string[];
  /** Encodes source text (and decodes target ids when `targetTokenizer` is not given). */
  tokenizer?: Tokenizer;
  /** Decodes target ids, when source and target vocabularies differ. */
  targetTokenizer?: Tokenizer;
  /** Target tokens every output must start with (one list for all sources, or one per source). */
  targetPrefix?: readonly number[] | readonly (readonly number[])[];
  /**
   * Return this many alternatives (as CTranslate2's `return_alternatives`): the most likely tokens at the first
   * position after the prefix, each completed greedily, in the order of that token's probability.
   */
  alternatives?: number;
  signal?: AbortSignal;
  /** Called with every generated token (greedy, sampling, alternatives; beam search streams {@link BeamEvent}s). */
  onToken?: (event: TokenEvent) => void;
  /**
   * How the decoder's keys and values are kept (default 'auto'), or a cache that already holds a translation's
   * start (from `model.createCache({ encoderState, rowsPerSource: 1 })` of these sources, and earlier calls): its
   * encoder state is used (nothing is encoded again); a non-empty one is continued by `targetPrefix` (no start token
   * again), only it is run, and the cache is advanced in place and not released. After greedy or sampling of one
   * output per source it holds everything but the last generated token (feed it as the next call's
   * `targetPrefix`); with beams or several samples, the final rows.
   */
  cache?: CacheMode | EncoderDecoderCache;
}

export interface TranslationHypothesis {
  /** Target ids: the forced prefix, then the generated tokens (a final stop token included). */
  readonly tokens: number[];
  readonly text?: string;
  /** Beam search and alternatives: sum(log p) / length^lengthPenalty over generated tokens; samples: sum(log p); 0 greedy. */
  readonly score: number;
}

export interface Translation {
  /** The best hypothesis's tokens. */
  readonly tokens: number[];
  readonly text?: string;
  readonly finishReason: FinishReason;
  /** n-best, best first (one entry without beam search; every sample with `numReturnSequences`). */
  readonly hypotheses: TranslationHypothesis[];
  /** With `logprobs` or `topLogprobs`: each generated token's log-probability under the model's distribution. */
  readonly logprobs?: number[];
  readonly topLogprobs?: TokenLogprob[][];
}

export interface TranslateResult {
  /** One per source sentence. */
  readonly translations: Translation[];
  readonly sourceTokens: number[][];
  /** The settings used: the request's options over the model's own generation defaults over kvt's. */
  readonly config: GenerationConfig;
  readonly timing: {
    readonly encodeMs: number;
    /** The first decoder call (start token and forced prefix, once per source), ms. */
    readonly prefillMs: number;
    readonly decodeMs: number[];
    readonly firstTokenMs: number;
    readonly totalMs: number;
  };
  readonly cache: {
    readonly length: number;
    readonly bytes: number;
    readonly capacity: number;
    readonly crossAttentionBytes: number;
    /** K/V bytes the self-attention cache wrote (see `Cache.bytesWritten`), where it counts them. */
    readonly bytesWritten?: number;
  } | null;
}

/**
 * Translates with an encoder-decoder model: encode once; project cross-attention K/V once; run the decoder's start
 * token (and prefix) once per source; then one cached decoder step per token. Greedy by default; `numBeams > 1`
 * runs beam search (beams share one encoder output, one copy of the cross-attention K/V and the first step).
 *
 * @example
 * ```ts
 * const { translations } = await translate(model, { text: 'Where is the train station?', tokenizer, numBeams: 4 });
 * console.log(translations[0].text);
 * ```
 */
export async function translate(model: EncoderDecoderModel, request: TranslateRequest): Promise<TranslateResult> {
  const stream = translateStream(model, request);
  for (;;) {
    const next = await stream.next();
    if (next.done) return next.value;
    if (next.value.kind === 'token') request.onToken?.(next.value);
  }
}

/**
 * Like {@link translate}, as an async iterable of events: a {@link TokenEvent} per token, or beam search's current
 * best hypothesis as it changes ({@link BeamEvent}); the generator's return value is the {@link TranslateResult}.
 *
 * @example
 * ```ts
 * for await (const event of translateStream(model, { text: 'Good morning', tokenizer, numBeams: 4 })) {
 *   if (event.kind === 'beam') render(event.text, event.final);
 * }
 * ```
 */
export async function* translateStream(
  model: EncoderDecoderModel,
  request: TranslateRequest,
): AsyncGenerator<GenerationEvent, TranslateResult> {
  rejectUnknownOptions(request, TRANSLATE_OPTIONS, 'translate');
  checkRequest(request, 'translate');
  const start = performance.now();
  const sources = sourceIds(request);
  validateIdBatch(sources, model.config.sourceVocabSize, model.config.maxPositions, 1, 'source');
  const prefixes = targetPrefixes(request.targetPrefix, sources.length, model.config.vocabSize);
  const longestPrefix = Math.max(...prefixes.map((p) => p.length));
  if (prefixes.some((p) => p.length !== longestPrefix))
    throw new InvalidOptionError('targetPrefix', request.targetPrefix, 'prefixes of one length for all sources');
  const given = typeof request.cache === 'object' ? request.cache : undefined;
  // decoder positions a given cache holds: the prefix continues them
  const held = given ? givenCacheLength(given, sources, longestPrefix) : 0;
  const config = resolveGenerationConfig(request, model.config, {
    promptLength: held + (held > 0 ? 0 : 1) + longestPrefix,
    inputs: sources.length,
    ...(model.generationDefaults ? { defaults: model.generationDefaults } : {}),
  });
  const decoderStart = model.config.specialTokens.decoderStart;
  if (decoderStart === undefined)
    throw new InvalidOptionError('model.config.specialTokens.decoderStart', undefined, 'a decoder start token');
  const histories = prefixes.map((p) => (held > 0 ? [...p] : [decoderStart, ...p]));
  validateIdBatch([histories[0]!], model.config.vocabSize, model.config.maxPositions - held, config.maxNewTokens, 'target');
  const tokenizer = request.targetTokenizer ?? request.tokenizer;
  if (config.stopStrings.length > 0 && !tokenizer)
    throw new InvalidOptionError('stopStrings', config.stopStrings, 'a tokenizer to go with them (request.tokenizer)');
  const A = request.alternatives === undefined ? 1 : request.alternatives;
  if (!Number.isInteger(A) || A < 1 || A > model.config.vocabSize)
    throw new InvalidOptionError('alternatives', request.alternatives, `an integer in [1, ${model.config.vocabSize}]`);
  if (A > 1 && (config.numBeams > 1 || config.sampling))
    throw new InvalidOptionError('alternatives', A, 'greedy decoding (numBeams 1, temperature 0) to go with alternatives');
  if (A > 1) checkGenerationMemory(model.config, sources.length * A, held + histories[0]!.length + config.maxNewTokens);

  const fan = A > 1 ? A : config.numBeams > 1 ? config.numBeams : config.numReturnSequences;
  const stepMs: number[] = [];
  let encodeMs = 0;
  let firstTokenMs = 0;
  let cacheInfo: TranslateResult['cache'] = null;
  let strategy: SamplingStrategy | BeamSearchStrategy | undefined;
  const finish = (): TranslateResult => ({
    translations: strategy ? translationsOf(strategy, prefixes, tokenizer, config.lengthPenalty, A > 1) : prefixes.map((p) => ({ tokens: [...p], finishReason: 'aborted' as const, hypotheses: [] })),
    sourceTokens: sources,
    config,
    timing: { encodeMs, prefillMs: stepMs[0] ?? 0, decodeMs: stepMs.slice(1), firstTokenMs, totalMs: performance.now() - start },
    cache: cacheInfo,
  });
  const checkAbort = abortChecker(request.signal, (reason) => new AbortedError(finish(), reason));
  const padToken = model.config.specialTokens.pad ?? config.stopTokenIds[0] ?? 0;

  let state: EncoderState | undefined;
  let session: DecodingSession<EncoderDecoderCache> | undefined;
  try {
    checkAbort(); // a signal aborted before the call: nothing runs
    if (given) {
      // the cache's own encoder output (the caller's): nothing is encoded again
      const encoderState = given.encoderState;
      session = { vocabSize: model.config.vocabSize, cache: given, step: (t) => model.decode(t, encoderState, given), reorder: (i) => given.reorder(i), dispose: () => undefined };
    } else {
      const t0 = performance.now();
      state = await model.encode(sources);
      encodeMs = performance.now() - t0;
      checkAbort();
      session = encoderDecoderSession(model, state, 1, (request.cache as CacheMode | undefined) ?? 'auto', histories[0]!.length + config.maxNewTokens - 1);
    }
    // the start token and any forced prefix, once per source; beams, samples and alternatives then fan out
    const t1 = performance.now();
    const first = await session.step(histories);
    stepMs.push(performance.now() - t1);
    checkAbort();
    const logits = fanOut(session, first, fan);
    if (config.numBeams > 1) {
      strategy = new BeamSearchStrategy({
        config,
        histories,
        padToken,
        textOf: tokenizer ? (g, tokens) => tokenizer.decode([...prefixes[g]!, ...tokens]) : undefined,
      });
    } else {
      const rows = histories.flatMap((history, sequence) =>
        Array.from({ length: fan }, (_, sample) => ({
          sequence,
          sample,
          history,
          decoder: tokenizer?.createStreamDecoder({ prefix: prefixes[sequence]! }),
        })),
      );
      strategy = new SamplingStrategy({
        config,
        rows,
        padToken,
        startedAt: start,
        scores: fan > 1,
        ...(A > 1 ? { firstToken: kthMostLikely(A) } : {}),
      });
    }
    for await (const event of decodeLoop(session, logits, strategy, { stepMs, checkAbort })) {
      if (firstTokenMs === 0) firstTokenMs = performance.now() - start;
      yield event;
    }
    const c = session.cache;
    const written = c?.bytesWritten;
    cacheInfo = c ? { length: c.length, bytes: c.bytes, capacity: c.capacity, crossAttentionBytes: c.crossAttentionBytes, ...(written !== undefined ? { bytesWritten: written } : {}) } : null;
    return finish();
  } finally {
    session?.dispose();
    state?.dispose();
  }
}

/**
 * The decoder positions a given cache holds, checked before any work: one row per source (a cache of these sources,
 * not yet fanned out), and a non-empty one needs a target prefix to continue it.
 */
function givenCacheLength(cache: EncoderDecoderCache, sources: readonly number[][], prefixLength: number): number {
  const lengths = cache.encoderState.sourceLengths;
  if (cache.sourceCount !== sources.length || cache.batchSize !== sources.length || sources.some((s, i) => s.length !== lengths[i]))
    throw new CacheStateError(
      `The cache holds ${cache.batchSize} rows of ${cache.sourceCount} sources of ${lengths.join(', ')} tokens; the request has ${sources.length} of ${sources.map((s) => s.length).join(', ')} (continue a cache from model.createCache({ encoderState: await model.encode(sources), rowsPerSource: 1 }) of these sources).`,
    );
  if (cache.encoderState.disposed) throw new CacheStateError("The cache's encoder state is disposed; keep it until the cache is done.");
  if (cache.length > 0 && prefixLength === 0)
    throw new InvalidOptionError('targetPrefix', undefined, `the target tokens that continue the cache's ${cache.length} decoder positions (at least the last token the previous call generated)`);
  return cache.length;
}

/** CTranslate2's alternatives: row k of a source takes the k-th most likely first token (ties: lower id first). */
function kthMostLikely(A: number): (row: number, distribution: TokenDistribution) => number {
  const orders = new Map<number, number[]>();
  return (row, d) => {
    const source = Math.floor(row / A);
    let order = orders.get(source);
    if (!order) {
      const l = d.logits;
      order = Array.from(l.keys()).sort((a, b) => l[b]! - l[a]! || a - b).slice(0, A);
      orders.set(source, order);
    }
    return order[row % A]!;
  };
}

function translationsOf(
  strategy: SamplingStrategy | BeamSearchStrategy,
  prefixes: number[][],
  tokenizer: Tokenizer | undefined,
  lengthPenalty: number,
  alternatives: boolean,
): Translation[] {
  const decoded = (tokens: readonly number[]) => (tokenizer ? { text: tokenizer.decode(tokens) } : {});
  if (strategy instanceof BeamSearchStrategy) {
    return strategy.results().map((list, i) => {
      const hypotheses = list.map((h) => {
        const tokens = [...prefixes[i]!, ...h.tokens];
        return { tokens, score: h.score, ...decoded(tokens) };
      });
      const best = hypotheses[0] ?? { tokens: [...prefixes[i]!], score: -Infinity };
      const finishReason = strategy.finishReason(i, best.tokens.slice(prefixes[i]!.length));
      return { tokens: best.tokens, ...('text' in best ? { text: best.text } : {}), finishReason, hypotheses };
    });
  }
  const outputs = strategy.outputs();
  return prefixes.map((prefix, i) => {
    const rows = outputs.filter((o) => o.sequence === i);
    const hypotheses = rows.map((o) => {
      const tokens = [...prefix, ...o.tokens];
      // streamed text joins onto the prefix's text
      const text = o.text !== undefined ? { text: tokenizer!.decode(prefix) + o.text } : {};
      const score = rows.length === 1 ? 0 : alternatives ? o.logProbability / Math.pow(Math.max(1, o.tokens.length), lengthPenalty) : o.logProbability;
      return { tokens, score, ...text };
    });
    const best = rows[0]!;
    return {
      tokens: hypotheses[0]!.tokens,
      ...('text' in hypotheses[0]! ? { text: hypotheses[0]!.text } : {}),
      finishReason: best.finishReason,
      hypotheses,
      ...(best.logprobs ? { logprobs: best.logprobs } : {}),
      ...(best.topLogprobs ? { topLogprobs: best.topLogprobs } : {}),
    };
  });
}

function sourceIds(request: TranslateRequest): number[][] {
  if (request.sourceIds !== undefined && request.text !== undefined)
    throw new InvalidOptionError('text', request.text, 'either text or sourceIds, not both');
  if (request.sourceIds !== undefined) return asBatch(request.sourceIds, 'sourceIds');
  if (request.text === undefined) throw new InvalidOptionError('text', undefined, 'source text (with a tokenizer) or sourceIds');
  if (!request.tokenizer) throw new InvalidOptionError('tokenizer', undefined, 'a tokenizer to encode the source text');
  const texts = typeof request.text === 'string' ? [request.text] : request.text;
  if (!Array.isArray(texts) || texts.length === 0) throw new InvalidOptionError('text', request.text, 'a string or a non-empty array of strings');
  return texts.map((t: unknown) => {
    if (typeof t !== 'string') throw new InvalidOptionError('text', t, 'a string or an array of strings');
    if (t.trim() === '') throw new InvalidOptionError('text', t, 'text with something to translate (it is empty)');
    return request.tokenizer!.encode(t);
  });
}

function targetPrefixes(prefix: TranslateRequest['targetPrefix'], count: number, vocabSize: number): number[][] {
  if (prefix === undefined || (Array.isArray(prefix) && prefix.length === 0)) return Array.from({ length: count }, () => []);
  const batch = asBatch(prefix, 'targetPrefix');
  const list = batch.length === 1 ? Array.from({ length: count }, () => [...batch[0]!]) : batch;
  if (list.length !== count) throw new InvalidOptionError('targetPrefix', prefix, `one prefix, or one per source (${count})`);
  for (const p of list) for (const id of p) if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw new TokenOutOfRangeError(id, vocabSize, 'targetPrefix');
  return list;
}
