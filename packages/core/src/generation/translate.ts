import type { EncoderDecoderModel, EncoderState } from '../contracts/model.js';
import type { Tokenizer } from '../contracts/tokenizer.js';
import { AbortedError, InvalidOptionError, TokenOutOfRangeError } from '../errors.js';
import { TRANSLATE_OPTIONS, rejectUnknownOptions } from './option-names.js';
import { resolveGenerationConfig, type GenerationOptions } from './config.js';
import { beamSearch, sampleLoop, type FinishReason, type SequenceOutput, type TokenEvent } from './decode-loops.js';
import type { Logits } from '../contracts/model.js';
import { logSoftmax } from './logits-processors.js';
import { abortChecker, asBatch, validateIdBatch } from './inputs.js';
import { encoderDecoderSession, type CacheMode, type DecodingSession } from './session.js';

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
  onToken?: (event: TokenEvent) => void;
  cache?: CacheMode;
}

export interface TranslationHypothesis {
  /** Target ids: the forced prefix, then the generated tokens (a final stop token included). */
  readonly tokens: number[];
  readonly text?: string;
  /** Beam search score: sum(log p) / length^lengthPenalty over generated tokens (0 for greedy). */
  readonly score: number;
}

export interface Translation {
  /** The best hypothesis's tokens. */
  readonly tokens: number[];
  readonly text?: string;
  readonly finishReason: FinishReason;
  /** n-best, best first (one entry without beam search). */
  readonly hypotheses: TranslationHypothesis[];
}

export interface TranslateResult {
  /** One per source sentence. */
  readonly translations: Translation[];
  readonly sourceTokens: number[][];
  readonly timing: {
    readonly encodeMs: number;
    /** The first decoder call (start token and forced prefix), ms. */
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
  } | null;
}

/**
 * Translates with an encoder-decoder model: encode once; project cross-attention K/V once; then one cached decoder
 * step per token. Greedy by default; `numBeams > 1` runs beam search (beams share one encoder output and one copy of
 * the cross-attention K/V).
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
    request.onToken?.(next.value);
  }
}

/** Like {@link translate}, as an async iterable of tokens (greedy or sampling; beam search yields nothing until done). */
export async function* translateStream(
  model: EncoderDecoderModel,
  request: TranslateRequest,
): AsyncGenerator<TokenEvent, TranslateResult> {
  rejectUnknownOptions(request, TRANSLATE_OPTIONS, 'translate');
  const start = performance.now();
  const sources = sourceIds(request);
  validateIdBatch(sources, model.config.sourceVocabSize, model.config.maxPositions, 0, 'source');
  const prefixes = targetPrefixes(request.targetPrefix, sources.length, model.config.vocabSize);
  const longestPrefix = Math.max(...prefixes.map((p) => p.length));
  const config = resolveGenerationConfig(request, model.config, 1 + longestPrefix);
  if (prefixes.some((p) => p.length !== longestPrefix))
    throw new InvalidOptionError('targetPrefix', request.targetPrefix, 'prefixes of one length for all sources');
  validateIdBatch([[0, ...prefixes[0]!]], model.config.vocabSize, model.config.maxPositions, config.maxNewTokens, 'target');
  const start0 = model.config.specialTokens.decoderStart;
  if (start0 === undefined) throw new InvalidOptionError('model.config.specialTokens.decoderStart', undefined, 'a decoder start token');
  const mode = request.cache ?? 'auto';
  if (mode !== 'auto' && mode !== 'backend' && mode !== 'concat' && mode !== 'none')
    throw new InvalidOptionError('cache', mode, "'auto', 'backend', 'concat' or 'none'");
  const tokenizer = request.targetTokenizer ?? request.tokenizer;
  const A = request.alternatives ?? 1;
  if (!Number.isInteger(A) || A < 1 || A > model.config.vocabSize)
    throw new InvalidOptionError('alternatives', request.alternatives, `an integer in [1, ${model.config.vocabSize}]`);
  if (A > 1 && (config.numBeams > 1 || config.sampling))
    throw new InvalidOptionError('alternatives', A, 'greedy decoding (numBeams 1, temperature 0) to go with alternatives');

  const N = A > 1 ? A : config.numBeams;
  const timing = { stepMs: [] as number[] };
  let encodeMs = 0;
  let firstTokenMs = 0;
  let cacheInfo: TranslateResult['cache'] = null;
  const generated: number[][] = sources.map(() => []);
  const finish = (translations: Translation[]): TranslateResult => ({
    translations,
    sourceTokens: sources,
    timing: {
      encodeMs,
      prefillMs: timing.stepMs[0] ?? 0,
      decodeMs: timing.stepMs.slice(1),
      firstTokenMs,
      totalMs: performance.now() - start,
    },
    cache: cacheInfo,
  });
  const checkAbort = abortChecker(
    request.signal,
    (reason) =>
      new AbortedError(
        finish(
          generated.map((g, i) => {
            const tokens = [...prefixes[i]!, ...g];
            return { tokens, finishReason: 'length' as const, hypotheses: [{ tokens, score: 0 }], ...decoded(tokenizer, tokens) };
          }),
        ),
        reason,
      ),
  );

  let state: EncoderState | undefined;
  let session: DecodingSession | undefined;
  try {
    checkAbort(); // a signal aborted before the call: nothing runs
    const t0 = performance.now();
    state = await model.encode(sources);
    encodeMs = performance.now() - t0;
    checkAbort();
    session = encoderDecoderSession(model, state, N, mode, 1 + longestPrefix + config.maxNewTokens);
    // First decoder call: the start token and any forced prefix, for every row.
    const firstInputs = sources.flatMap((_, i) => Array.from({ length: N }, () => [start0, ...prefixes[i]!]));
    const t1 = performance.now();
    let logits = await session.step(firstInputs);
    timing.stepMs.push(performance.now() - t1);
    checkAbort();
    const padToken = model.config.specialTokens.pad ?? config.stopTokenIds[0] ?? 0;
    const histories = sources.map((_, i) => [...prefixes[i]!]);
    const ctx = { config, histories, tokenizer, padToken, signal: request.signal, timing, checkAbort };
    let translations: Translation[];
    if (A > 1) {
      translations = await alternativesSearch(session, logits, sources.length, A, prefixes, { ...ctx, scores: true }, tokenizer);
    } else if (N === 1) {
      const loop = sampleLoop(session, logits, {
        ...ctx,
        tokenizer: tokenizer && prefixes[0]!.length === 0 ? tokenizer : undefined,
      });
      for (;;) {
        const next = await loop.next();
        if (next.done) {
          translations = next.value.map((o, i) => {
            const tokens = [...prefixes[i]!, ...o.tokens];
            return { tokens, finishReason: o.finishReason, hypotheses: [{ tokens, score: 0, ...decoded(tokenizer, tokens) }], ...decoded(tokenizer, tokens) };
          });
          break;
        }
        if (firstTokenMs === 0) firstTokenMs = performance.now() - start;
        generated[next.value.sequence]!.push(next.value.token);
        yield next.value;
        checkAbort();
      }
    } else {
      const hyps = await beamSearch(session, logits, sources.length, ctx);
      firstTokenMs = performance.now() - start;
      translations = hyps.map((list, i) => {
        const hs = list.map((h) => {
          const tokens = [...prefixes[i]!, ...h.tokens];
          return { tokens, score: h.score, ...decoded(tokenizer, tokens) };
        });
        const best = hs[0]!;
        const last = best.tokens[best.tokens.length - 1]!;
        return {
          tokens: best.tokens,
          finishReason: config.stopTokenIds.includes(last) ? ('stop-token' as const) : ('length' as const),
          hypotheses: hs,
          ...decoded(tokenizer, best.tokens),
        };
      });
    }
    const c = session.cache as (typeof session.cache & { crossAttentionBytes?: number }) | null;
    cacheInfo = c
      ? { length: c.length, bytes: c.bytes, capacity: c.capacity, crossAttentionBytes: c.crossAttentionBytes ?? 0 }
      : null;
    return finish(translations);
  } finally {
    session?.dispose();
    state?.dispose();
  }
}

/**
 * Alternatives after the prefix: row k of each source takes the k-th most likely token, then all rows continue
 * greedily (rows of a source share its cross-attention K/V; nothing is recomputed).
 */
async function alternativesSearch(
  session: DecodingSession,
  logits: Logits,
  sources: number,
  A: number,
  prefixes: number[][],
  ctx: Parameters<typeof sampleLoop>[2],
  tokenizer: Tokenizer | undefined,
): Promise<Translation[]> {
  const V = logits.vocabSize;
  const first: number[] = [];
  const firstLp: number[] = [];
  for (let g = 0; g < sources; g++) {
    const row = logits.data.slice(g * A * V, (g * A + 1) * V);
    const lps = logSoftmax(row);
    const order = Array.from(lps.keys()).sort((a, b) => lps[b]! - lps[a]! || a - b).slice(0, A);
    for (const t of order) first.push(t), firstLp.push(lps[t]!);
  }
  const stop = new Set(ctx.config.stopTokenIds);
  const t0 = performance.now();
  const next = await session.step(first.map((t) => [t]));
  ctx.timing.stepMs.push(performance.now() - t0);
  const histories = first.map((t, r) => [...prefixes[Math.floor(r / A)]!, t]);
  const rest = ctx.config.maxNewTokens - 1;
  let outs: SequenceOutput[] = first.map(() => ({ tokens: [], finishReason: 'length' as const, logProbability: 0 }));
  if (rest > 0) {
    const loop = sampleLoop(session, next, {
      ...ctx,
      config: { ...ctx.config, maxNewTokens: rest },
      histories,
      tokenizer: undefined,
    });
    let r = await loop.next();
    while (!r.done) r = await loop.next();
    outs = r.value;
  }
  return Array.from({ length: sources }, (_, g) => {
    const hyps = Array.from({ length: A }, (_, k) => {
      const r = g * A + k;
      const o = outs[r]!;
      const gen = stop.has(first[r]!) ? [first[r]!] : [first[r]!, ...o.tokens];
      const tokens = [...prefixes[g]!, ...gen];
      const lp = firstLp[r]! + (stop.has(first[r]!) ? 0 : (o.logProbability ?? 0));
      return { tokens, score: lp / Math.pow(gen.length, ctx.config.lengthPenalty), ...decoded(tokenizer, tokens) };
    });
    const best = hyps[0]!;
    return {
      tokens: best.tokens,
      finishReason: stop.has(best.tokens[best.tokens.length - 1]!) ? ('stop-token' as const) : ('length' as const),
      hypotheses: hyps,
      ...decoded(tokenizer, best.tokens),
    };
  });
}

function sourceIds(request: TranslateRequest): number[][] {
  if (request.sourceIds !== undefined && request.text !== undefined)
    throw new InvalidOptionError('text', request.text, 'either text or sourceIds, not both');
  if (request.sourceIds !== undefined) return asBatch(request.sourceIds, 'sourceIds');
  if (request.text === undefined) throw new InvalidOptionError('text', undefined, 'source text (with a tokenizer) or sourceIds');
  if (!request.tokenizer) throw new InvalidOptionError('tokenizer', undefined, 'a tokenizer to encode the source text');
  const texts = typeof request.text === 'string' ? [request.text] : [...request.text];
  return texts.map((t) => {
    if (typeof t !== 'string') throw new InvalidOptionError('text', t, 'a string or an array of strings');
    return request.tokenizer!.encode(t);
  });
}

function targetPrefixes(
  prefix: TranslateRequest['targetPrefix'],
  count: number,
  vocabSize: number,
): number[][] {
  if (prefix === undefined || (Array.isArray(prefix) && prefix.length === 0)) return Array.from({ length: count }, () => []);
  const batch = asBatch(prefix, 'targetPrefix');
  const list = batch.length === 1 ? Array.from({ length: count }, () => [...batch[0]!]) : batch;
  if (list.length !== count)
    throw new InvalidOptionError('targetPrefix', prefix, `one prefix, or one per source (${count})`);
  for (const p of list) for (const id of p) if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw new TokenOutOfRangeError(id, vocabSize, 'targetPrefix');
  return list;
}

function decoded(tokenizer: Tokenizer | undefined, tokens: readonly number[]): { text?: string } {
  return tokenizer ? { text: tokenizer.decode(tokens) } : {};
}
