import type { DecoderOnlyModel } from '../contracts/model.js';
import type { Tokenizer } from '../contracts/tokenizer.js';
import { AbortedError, InvalidOptionError } from '../errors.js';
import { GENERATE_OPTIONS, rejectUnknownOptions } from './option-names.js';
import { resolveGenerationConfig, type GenerationOptions } from './config.js';
import { beamSearch, sampleLoop, type FinishReason, type Hypothesis, type TokenEvent } from './decode-loops.js';
import { abortChecker, asBatch, validateIdBatch } from './inputs.js';
import { decoderOnlySession, type CacheMode } from './session.js';

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
  /** Called with every generated token. */
  onToken?: (event: TokenEvent) => void;
  /** How past keys and values are kept (default 'auto': the backend's cache where a backend package is imported). */
  cache?: CacheMode;
}

export interface GeneratedSequence {
  /** Generated ids, prompt excluded (a final stop token included). */
  readonly tokens: number[];
  /** Decoded text of `tokens` (special tokens dropped, cut before a stop string), when a tokenizer was given. */
  readonly text?: string;
  readonly finishReason: FinishReason;
  /** Beam search: the n-best, best first. */
  readonly hypotheses?: (Hypothesis & { readonly text?: string })[];
}

export interface GenerateResult {
  /** One per prompt. */
  readonly sequences: GeneratedSequence[];
  /** The prompt ids, as fed to the model. */
  readonly promptTokens: number[][];
  /** The seed the sampler used (pass it back to reproduce a sampled output). */
  readonly seed: number;
  readonly timing: {
    /** Prompt processing (the first model call), ms. */
    readonly prefillMs: number;
    /** Each later model call, ms. */
    readonly decodeMs: number[];
    /** From the call to the first token, ms. */
    readonly firstTokenMs: number;
    readonly totalMs: number;
  };
  /** The cache when generation ended (before it was released). */
  readonly cache: { readonly length: number; readonly bytes: number; readonly capacity: number } | null;
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
    request.onToken?.(next.value);
  }
}

/**
 * Like {@link generate}, as an async iterable of tokens; the generator's return value is the {@link GenerateResult}.
 * Breaking out of the loop releases the cache.
 *
 * @example
 * ```ts
 * for await (const { text } of generateStream(model, { prompt: 'Once upon a time', tokenizer })) {
 *   process.stdout.write(text);
 * }
 * ```
 */
export async function* generateStream(
  model: DecoderOnlyModel,
  request: GenerateRequest,
): AsyncGenerator<TokenEvent, GenerateResult> {
  rejectUnknownOptions(request, GENERATE_OPTIONS, 'generate');
  const start = performance.now();
  const prompts = promptIds(request);
  const config = resolveGenerationConfig(request, model.config, Math.max(...prompts.map((p) => p.length)));
  if (config.stopStrings.length > 0 && !request.tokenizer)
    throw new InvalidOptionError('stopStrings', request.stopStrings, 'a tokenizer to go with them (request.tokenizer)');
  validateIdBatch(prompts, model.config.vocabSize, model.config.maxPositions, config.maxNewTokens, 'prompt');
  const mode = request.cache ?? 'auto';
  if (mode !== 'auto' && mode !== 'backend' && mode !== 'concat' && mode !== 'none')
    throw new InvalidOptionError('cache', mode, "'auto', 'backend', 'concat' or 'none'");

  const longest = Math.max(...prompts.map((p) => p.length));
  const session = decoderOnlySession(model, prompts.length, mode, longest + config.maxNewTokens);
  const histories = prompts.map((p) => [...p]);
  const timing = { stepMs: [] as number[] };
  const generated: number[][] = prompts.map(() => []);
  let firstTokenMs = 0;
  let cacheInfo: GenerateResult['cache'] = null;
  const finish = (sequences: GeneratedSequence[]): GenerateResult => ({
    sequences,
    promptTokens: prompts,
    seed: config.seed,
    timing: {
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
        finish(generated.map((tokens) => ({ tokens: [...tokens], finishReason: 'length' as const, ...text(request.tokenizer, tokens) }))),
        reason,
      ),
  );
  const padToken = model.config.specialTokens.pad ?? config.stopTokenIds[0] ?? 0;
  const ctx = { config, histories, tokenizer: request.tokenizer, padToken, signal: request.signal, timing, checkAbort };
  try {
    checkAbort(); // a signal aborted before the call: nothing runs
    const t0 = performance.now();
    let logits = await session.step(prompts);
    timing.stepMs.push(performance.now() - t0);
    checkAbort();
    let sequences: GeneratedSequence[];
    if (config.numBeams === 1) {
      const loop = sampleLoop(session, logits, ctx);
      for (;;) {
        const next = await loop.next();
        if (next.done) {
          sequences = next.value.map((o) => {
            const t = request.tokenizer ? decodeText(request.tokenizer, o.tokens, o.stopStringIndex) : undefined;
            return { tokens: o.tokens, finishReason: o.finishReason, ...(t !== undefined ? { text: t } : {}) };
          });
          break;
        }
        if (firstTokenMs === 0) firstTokenMs = performance.now() - start;
        generated[next.value.sequence]!.push(next.value.token);
        yield next.value;
        checkAbort();
      }
    } else {
      // Replicate each prompt's cache rows numBeams times: a reorder, not a second prefill.
      const N = config.numBeams;
      const rows = prompts.flatMap((_, i) => Array<number>(N).fill(i));
      session.reorder(rows);
      logits = replicateRows(logits, N);
      const hyps = await beamSearch(session, logits, prompts.length, ctx);
      firstTokenMs = performance.now() - start;
      sequences = hyps.map((list) => {
        const best = list[0]!;
        const withText = list.map((h) => ({ ...h, ...text(request.tokenizer, h.tokens) }));
        return {
          tokens: best.tokens,
          finishReason: config.stopTokenIds.includes(best.tokens[best.tokens.length - 1]!) ? 'stop-token' : 'length',
          ...text(request.tokenizer, best.tokens),
          hypotheses: withText,
        };
      });
    }
    cacheInfo = session.cache ? { length: session.cache.length, bytes: session.cache.bytes, capacity: session.cache.capacity } : null;
    return finish(sequences);
  } finally {
    session.dispose();
  }
}

function promptIds(request: GenerateRequest): number[][] {
  if (request.inputIds !== undefined && request.prompt !== undefined)
    throw new InvalidOptionError('prompt', request.prompt, 'either prompt or inputIds, not both');
  if (request.inputIds !== undefined) return asBatch(request.inputIds, 'inputIds');
  if (request.prompt === undefined)
    throw new InvalidOptionError('prompt', undefined, 'a prompt (with a tokenizer) or inputIds');
  if (!request.tokenizer) throw new InvalidOptionError('tokenizer', undefined, 'a tokenizer to encode the prompt text');
  const texts = typeof request.prompt === 'string' ? [request.prompt] : [...request.prompt];
  return texts.map((t) => {
    if (typeof t !== 'string') throw new InvalidOptionError('prompt', t, 'a string or an array of strings');
    return request.tokenizer!.encode(t);
  });
}

/** Copies each row of last-position logits `times` times, row-major: [r0, r0, …, r1, r1, …]. */
export function replicateRows(
  logits: { data: Float32Array; batch: number; positions: number; vocabSize: number },
  times: number,
) {
  const stride = logits.positions * logits.vocabSize;
  const data = new Float32Array(logits.batch * times * stride);
  for (let r = 0; r < logits.batch; r++)
    for (let k = 0; k < times; k++) data.set(logits.data.subarray(r * stride, (r + 1) * stride), (r * times + k) * stride);
  return { data, batch: logits.batch * times, positions: logits.positions, vocabSize: logits.vocabSize };
}

function decodeText(tokenizer: Tokenizer, tokens: readonly number[], stopStringIndex?: number): string {
  const full = tokenizer.decode(tokens);
  return stopStringIndex === undefined ? full : full.slice(0, stopStringIndex);
}

function text(tokenizer: Tokenizer | undefined, tokens: readonly number[]): { text?: string } {
  return tokenizer ? { text: tokenizer.decode(tokens) } : {};
}
