import type { Cache, KVDtype } from '../contracts/cache.js';
import type { DecoderOnlyModel } from '../contracts/model.js';
import type { Tokenizer } from '../contracts/tokenizer.js';
import { AbortedError, CacheStateError, InvalidInputError, InvalidOptionError, UnsupportedError } from '../errors.js';
import { BeamSearchStrategy, type Hypothesis } from './beam-search.js';
import { resolveGenerationConfig, type GenerationConfig, type GenerationOptions } from './config.js';
import type { GenerationEvent, TokenEvent, TokenLogprob } from './events.js';
import { abortChecker, asBatch, checkRequest, validateIdBatch } from './inputs.js';
import { GENERATE_OPTIONS, rejectUnknownOptions } from './option-names.js';
import { decodeLoop, fanOut } from './pipeline.js';
import { SamplingStrategy, type SequenceOutput } from './sampling-strategy.js';
import type { PrefixCache } from './prefix-cache.js';
import { decoderOnlySession, type CacheMode, type DecodingSession, type SlidingWindow } from './session.js';
import type { FinishReason } from './stopping-criteria.js';

/** A request to {@link generate} or {@link generateStream}. Give `inputIds`, or `prompt` with a `tokenizer`. */
export interface GenerateRequest extends GenerationOptions {
  /** Prompt ids: one sequence, or a batch of sequences of any lengths. */
  inputIds?: readonly number[] | readonly (readonly number[])[];
  /** Prompt text (one or a batch), encoded with `tokenizer`. */
  prompt?: string | readonly string[];
  /** Encodes `prompt`, decodes the output, and enables `stopStrings` and streamed text. */
  tokenizer?: Tokenizer;
  /** Stops generation within one step; the promise rejects with {@link AbortedError} holding the partial result. */
  signal?: AbortSignal;
  /** Called with every generated token (greedy and sampling; beam search streams {@link BeamEvent}s to the iterator). */
  onToken?: (event: TokenEvent) => void;
  /**
   * How past keys and values are kept (default 'auto': the backend's cache where a backend package is imported), or
   * a cache that already holds a prefix (one row per input, from `model.createCache` and earlier calls): the inputs
   * then continue it, only they are prefilled, and the cache is advanced in place and not released. After greedy
   * or sampling of one sequence per input it holds the inputs and every generated token but the last; with beams
   * or several samples its rows are the final beams' or samples'.
   */
  cache?: CacheMode | Cache;
  /** How the cache generate creates stores K/V (default 'fp32'; 'fp16' and 'int8' where the backend offers them). */
  kvDtype?: KVDtype;
  /**
   * Keep the first `sinkTokens` positions (default 4) and the last `window` (StreamingLLM): generation runs past the
   * model's positions with constant memory; rotary models (Llama) only. Prompts of one length.
   */
  slidingWindow?: { window: number; sinkTokens?: number };
  /**
   * Reuse the K/V of earlier prompts that start with the same whole blocks (see {@link PrefixCache}): only the rest
   * of the prompt is prefilled, and this prompt's blocks are kept for later requests. One prompt; the cache and
   * kvDtype are the prefix cache's.
   */
  prefixCache?: PrefixCache;
}

/** One output of one prompt: a sample, or a beam hypothesis. */
export interface GeneratedHypothesis extends Hypothesis {
  readonly text?: string;
  readonly finishReason?: FinishReason;
}

export interface GeneratedSequence {
  /** Generated ids, prompt excluded (a final stop token included). */
  readonly tokens: number[];
  /** Decoded text of `tokens` (special tokens dropped, cut before a stop string), when a tokenizer was given. */
  readonly text?: string;
  readonly finishReason: FinishReason;
  /** With `logprobs` or `topLogprobs`: each token's log-probability under the model's distribution. */
  readonly logprobs?: number[];
  /** With `topLogprobs`: each step's most likely tokens. */
  readonly topLogprobs?: TokenLogprob[][];
  /** Beam search: the n-best, best first. Sampling with `numReturnSequences` > 1: every sample, in order. */
  readonly hypotheses?: GeneratedHypothesis[];
}

export interface GenerateResult {
  /** One per prompt. */
  readonly sequences: GeneratedSequence[];
  /** The prompt ids, as fed to the model. */
  readonly promptTokens: number[][];
  /** The seed the sampler used (pass it back to reproduce a sampled output). */
  readonly seed: number;
  /** The settings used: the request's options over the model's own generation defaults over kvt's. */
  readonly config: GenerationConfig;
  /** Positions of each prompt the prefill computed: those not already in a given cache or reused from `prefixCache`. */
  readonly prefillTokens: number;
  /** Positions reused from `prefixCache` (0 without one, or when no cached prefix matched). */
  readonly reusedTokens: number;
  readonly timing: {
    /** Prompt processing (the first model call), ms. */
    readonly prefillMs: number;
    /** Each later model call, ms. */
    readonly decodeMs: number[];
    /** From the call to the first token, ms. */
    readonly firstTokenMs: number;
    readonly totalMs: number;
  };
  /** The cache when generation ended (before it was released); `blocks` for paged caches. */
  readonly cache: {
    readonly length: number;
    readonly bytes: number;
    readonly capacity: number;
    readonly blocks?: { readonly inUse: number; readonly shared: number };
    /** K/V bytes the cache wrote (see `Cache.bytesWritten`), where it counts them. */
    readonly bytesWritten?: number;
  } | null;
}

/**
 * Generates text with a decoder-only model: prefill once, then one cached step per token.
 *
 * @example
 * ```ts
 * const result = await generate(model, { prompt: 'Once upon a time', tokenizer, maxNewTokens: 64 });
 * console.log(result.sequences[0].text);
 * ```
 */
export async function generate(model: DecoderOnlyModel, request: GenerateRequest): Promise<GenerateResult> {
  const stream = generateStream(model, request);
  for (;;) {
    const next = await stream.next();
    if (next.done) return next.value;
    if (next.value.kind === 'token') request.onToken?.(next.value);
  }
}

/**
 * Like {@link generate}, as an async iterable of events: a {@link TokenEvent} per token (greedy, sampling), or beam
 * search's current best hypothesis as it changes ({@link BeamEvent}). The generator's return value is the
 * {@link GenerateResult}. Breaking out of the loop releases the cache.
 *
 * @example
 * ```ts
 * for await (const event of generateStream(model, { prompt: 'Once upon a time', tokenizer })) {
 *   if (event.kind === 'token') process.stdout.write(event.text);
 * }
 * ```
 */
export async function* generateStream(
  model: DecoderOnlyModel,
  request: GenerateRequest,
): AsyncGenerator<GenerationEvent, GenerateResult> {
  rejectUnknownOptions(request, GENERATE_OPTIONS, 'generate');
  checkRequest(request, 'generate');
  const start = performance.now();
  const prompts = promptIds(request);
  const longest = Math.max(...prompts.map((p) => p.length));
  const sliding = slidingWindowOf(model, request, prompts);
  const config = resolveGenerationConfig(request, model.config, {
    promptLength: longest,
    inputs: prompts.length,
    ...(model.generationDefaults ? { defaults: model.generationDefaults } : {}),
    ...(sliding ? { unboundedPositions: true } : {}),
  });
  if (config.stopStrings.length > 0 && !request.tokenizer)
    throw new InvalidOptionError('stopStrings', request.stopStrings, 'a tokenizer to go with them (request.tokenizer)');
  const prefixCache = prefixCacheOf(model, request, prompts, sliding);
  const given = typeof request.cache === 'object' ? request.cache : undefined;
  if (given && request.kvDtype !== undefined)
    throw new InvalidOptionError('kvDtype', request.kvDtype, 'no kvDtype with a given cache (it stores K/V as it was created)');
  if (given && given.batchSize !== prompts.length)
    throw new CacheStateError(`The cache holds ${given.batchSize} rows; the request has ${prompts.length} inputs to continue them.`);
  // a given cache's positions are taken; a sliding window needs room for the prompt and one more
  if (sliding) validateIdBatch(prompts, model.config.vocabSize, sliding.sinkTokens + sliding.window, 1, 'prompt');
  else validateIdBatch(prompts, model.config.vocabSize, model.config.maxPositions - (given?.length ?? 0), config.maxNewTokens, 'prompt');
  const tokenizer = request.tokenizer;
  const fan = config.numBeams > 1 ? config.numBeams : config.numReturnSequences;

  // a prefix cache's request starts from the longest cached prefix of its prompt (owned, released at the end)
  const reuse = prefixCache?.acquire(prompts[0]!, longest + config.maxNewTokens - 1);
  const owned = reuse?.cache ?? given;
  const session: DecodingSession = owned
    ? { vocabSize: model.config.vocabSize, cache: owned, step: (t) => model.forward(t, owned), reorder: (i) => owned.reorder(i), dispose: () => (reuse ? owned.dispose() : undefined) }
    : decoderOnlySession(model, prompts.length, (request.cache as CacheMode | undefined) ?? 'auto', longest + config.maxNewTokens - 1, request.kvDtype, sliding);
  const stepMs: number[] = [];
  let firstTokenMs = 0;
  let cacheInfo: GenerateResult['cache'] = null;
  let strategy: SamplingStrategy | BeamSearchStrategy | undefined;
  const finish = (): GenerateResult => ({
    sequences: strategy ? sequencesOf(strategy, prompts.length, tokenizer) : prompts.map(() => ({ tokens: [], finishReason: 'aborted' as const })),
    promptTokens: prompts,
    seed: config.seed,
    config,
    prefillTokens: longest - (reuse?.reused ?? 0),
    reusedTokens: reuse?.reused ?? 0,
    timing: { prefillMs: stepMs[0] ?? 0, decodeMs: stepMs.slice(1), firstTokenMs, totalMs: performance.now() - start },
    cache: cacheInfo,
  });
  const checkAbort = abortChecker(request.signal, (reason) => new AbortedError(finish(), reason));
  const padToken = model.config.specialTokens.pad ?? config.stopTokenIds[0] ?? 0;
  try {
    checkAbort(); // a signal aborted before the call: nothing runs
    const t0 = performance.now();
    const prefill = await session.step(reuse ? [prompts[0]!.slice(reuse.reused)] : prompts);
    stepMs.push(performance.now() - t0);
    if (prefixCache) prefixCache.insert(prompts[0]!, session.cache!);
    checkAbort();
    // beams and parallel samples share the prompt's prefill: its cache rows are duplicated, not recomputed
    const logits = fanOut(session, prefill, fan);
    if (config.numBeams > 1) {
      strategy = new BeamSearchStrategy({
        config,
        histories: prompts,
        padToken,
        textOf: tokenizer ? (_, tokens) => tokenizer.decode(tokens) : undefined,
      });
    } else {
      const rows = prompts.flatMap((history, sequence) =>
        Array.from({ length: fan }, (_, sample) => ({ sequence, sample, history, decoder: tokenizer?.createStreamDecoder() })),
      );
      strategy = new SamplingStrategy({ config, rows, padToken, startedAt: start, scores: fan > 1 });
    }
    for await (const event of decodeLoop(session, logits, strategy, { stepMs, checkAbort })) {
      if (firstTokenMs === 0) firstTokenMs = performance.now() - start;
      yield event;
    }
    const cache = session.cache;
    const blocks = cache?.blocks;
    const written = cache?.bytesWritten;
    cacheInfo = cache ? { length: cache.length, bytes: cache.bytes, capacity: cache.capacity, ...(blocks ? { blocks } : {}), ...(written !== undefined ? { bytesWritten: written } : {}) } : null;
    return finish();
  } finally {
    session.dispose();
  }
}

/** Results per prompt from a finished (or aborted) strategy. */
function sequencesOf(strategy: SamplingStrategy | BeamSearchStrategy, prompts: number, tokenizer: Tokenizer | undefined): GeneratedSequence[] {
  if (strategy instanceof BeamSearchStrategy) {
    return strategy.results().map((list, g) => {
      const hypotheses = list.map((h) => ({ ...h, ...(tokenizer ? { text: tokenizer.decode(h.tokens) } : {}) }));
      const best = hypotheses[0] ?? { tokens: [], score: -Infinity, logProbability: -Infinity };
      return { tokens: best.tokens, ...('text' in best ? { text: best.text } : {}), finishReason: strategy.finishReason(g, best.tokens), hypotheses };
    });
  }
  const outputs = strategy.outputs();
  return Array.from({ length: prompts }, (_, i) => {
    const samples = outputs.filter((o) => o.sequence === i);
    const first = samples[0]!;
    return {
      ...sequenceFields(first),
      ...(samples.length > 1
        ? { hypotheses: samples.map((s) => ({ tokens: s.tokens, ...(s.text !== undefined ? { text: s.text } : {}), score: s.logProbability, logProbability: s.logProbability, finishReason: s.finishReason })) }
        : {}),
    };
  });
}

function sequenceFields(o: SequenceOutput): GeneratedSequence {
  return {
    tokens: o.tokens,
    ...(o.text !== undefined ? { text: o.text } : {}),
    finishReason: o.finishReason,
    ...(o.logprobs ? { logprobs: o.logprobs } : {}),
    ...(o.topLogprobs ? { topLogprobs: o.topLogprobs } : {}),
  };
}

/** The request's sliding window, checked before any work (see {@link GenerateRequest.slidingWindow}). */
function slidingWindowOf(model: DecoderOnlyModel, request: GenerateRequest, prompts: readonly number[][]): SlidingWindow | undefined {
  const w = request.slidingWindow as { window?: unknown; sinkTokens?: unknown } | undefined;
  if (w === undefined) return undefined;
  if (w === null || typeof w !== 'object') throw new InvalidOptionError('slidingWindow', w, '{ window, sinkTokens? }');
  rejectUnknownOptions(w, ['window', 'sinkTokens'], 'slidingWindow');
  const sinkTokens = w.sinkTokens ?? 4;
  const max = model.config.maxPositions;
  if (!Number.isInteger(sinkTokens) || (sinkTokens as number) < 0) throw new InvalidOptionError('slidingWindow.sinkTokens', w.sinkTokens, 'an integer ≥ 0');
  if (!Number.isInteger(w.window) || (w.window as number) < 1 || (w.window as number) + (sinkTokens as number) > max)
    throw new InvalidOptionError('slidingWindow.window', w.window, `an integer ≥ 1 with window + sinkTokens ≤ the model's ${max} positions`);
  if (!model.evictPositions) throw new UnsupportedError(`slidingWindow needs a model whose positions can move (rotary: Llama); this is ${model.config.architecture}.`);
  if (request.cache === 'none' || typeof request.cache === 'object') throw new InvalidOptionError('cache', request.cache, "a cache generate creates ('auto', 'backend' or 'concat') with slidingWindow");
  if (prompts.some((p) => p.length !== prompts[0]!.length)) throw new InvalidInputError('slidingWindow: give prompts of one length (the window slides over every row at once).');
  return { window: w.window as number, sinkTokens: sinkTokens as number };
}

/** The request's prefix cache, checked before any work (see {@link GenerateRequest.prefixCache}). */
function prefixCacheOf(model: DecoderOnlyModel, request: GenerateRequest, prompts: readonly number[][], sliding: SlidingWindow | undefined): PrefixCache | undefined {
  const p = request.prefixCache;
  if (p === undefined) return undefined;
  if (p === null || typeof p !== 'object' || typeof (p as Partial<PrefixCache>).acquire !== 'function') throw new InvalidOptionError('prefixCache', p, 'a PrefixCache from createPrefixCache(model)');
  if (p.disposed) throw new InvalidOptionError('prefixCache', p, 'a PrefixCache that is not disposed');
  if (p.model !== model) throw new InvalidOptionError('prefixCache', p, 'a PrefixCache created for this model (K/V of another model cannot be reused)');
  if (prompts.length !== 1) throw new InvalidOptionError('prefixCache', p, `one prompt per request (got ${prompts.length}); call generate once per prompt`);
  if (request.cache !== undefined && request.cache !== p.cacheMode)
    throw new InvalidOptionError('cache', request.cache, `no cache option with prefixCache, or its own ('${p.cacheMode}')`);
  if (request.kvDtype !== undefined && request.kvDtype !== p.kvDtype)
    throw new InvalidOptionError('kvDtype', request.kvDtype, `no kvDtype with prefixCache, or its own ('${p.kvDtype}')`);
  if (sliding) throw new InvalidOptionError('slidingWindow', request.slidingWindow, 'no slidingWindow with prefixCache (evicted positions move the blocks a prefix shares)');
  return p;
}

function promptIds(request: GenerateRequest): number[][] {
  if (request.inputIds !== undefined && request.prompt !== undefined)
    throw new InvalidOptionError('prompt', request.prompt, 'either prompt or inputIds, not both');
  if (request.inputIds !== undefined) return asBatch(request.inputIds, 'inputIds');
  if (request.prompt === undefined)
    throw new InvalidOptionError('prompt', undefined, 'a prompt (with a tokenizer) or inputIds');
  if (!request.tokenizer) throw new InvalidOptionError('tokenizer', undefined, 'a tokenizer to encode the prompt text');
  const texts = typeof request.prompt === 'string' ? [request.prompt] : request.prompt;
  if (!Array.isArray(texts) || texts.length === 0) throw new InvalidOptionError('prompt', request.prompt, 'a string or a non-empty array of strings');
  return texts.map((t: unknown) => {
    if (typeof t !== 'string') throw new InvalidOptionError('prompt', t, 'a string or an array of strings');
    return request.tokenizer!.encode(t);
  });
}
