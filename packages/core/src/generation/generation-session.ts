import { KV_DTYPES, type Cache, type KVDtype } from '../contracts/cache.js';
import type { DecoderOnlyModel } from '../contracts/model.js';
import type { Tokenizer } from '../contracts/tokenizer.js';
import { AbortedError, CacheStateError, DisposedError, InvalidInputError, InvalidOptionError } from '../errors.js';
import type { GenerationOptions } from './config.js';
import type { GenerationEvent, TokenEvent } from './events.js';
import { generateStream, type GenerateResult } from './generate.js';
import { GENERATION_OPTIONS, rejectUnknownOptions } from './option-names.js';
import type { PrefixCache } from './prefix-cache.js';

/** How a session keeps its cache: the backend's (default 'auto', as `generate`) or the reference. */
export type SessionCacheMode = 'auto' | 'backend' | 'concat';

export interface SessionOptions {
  /** Encodes the turns' text and decodes the output. */
  readonly tokenizer?: Tokenizer;
  /** Which cache the session keeps (default 'auto'). */
  readonly cache?: SessionCacheMode;
  /** Ids the conversation starts with, before the first turn (default: the BOS token where the model has one). */
  readonly prefix?: readonly number[];
  /** How the session's cache stores K/V (default 'fp32'; 'fp16' and 'int8' where the backend offers them). */
  readonly kvDtype?: KVDtype;
  /**
   * Shares prompt prefixes with other sessions and requests (see `createPrefixCache`): the first turn starts from
   * the longest held prefix of its ids (a shared system prompt is not computed again) and keeps its own whole blocks
   * there. The session's cache and kvDtype are then the prefix cache's.
   */
  readonly prefixCache?: PrefixCache;
}

/** One turn: text (with the session's tokenizer) or ids that continue the conversation, and generation options. */
export interface SessionRequest extends GenerationOptions {
  /** Text that continues the conversation (encoded without a BOS token). */
  prompt?: string;
  /** Ids that continue the conversation. */
  inputIds?: readonly number[];
  /** Stops generation within one step; the promise rejects with AbortedError, the session keeps what was made. */
  signal?: AbortSignal;
  /** Called with every generated token. */
  onToken?: (event: TokenEvent) => void;
}

/** A turn's result: `prefillTokens` counts the tokens not yet in the cache, never the earlier turns. */
export type SessionResult = GenerateResult;

/**
 * A conversation that keeps its KV cache across calls: each turn prefills only its new tokens (and the last token
 * of the turn before) and continues. `fork()` branches it, `truncate(n)` rewinds it.
 *
 * @example
 * ```ts
 * const session = createSession(model, { tokenizer });
 * const a = await session.generate({ prompt: 'Once upon a time', maxNewTokens: 32 });
 * const b = await session.generate({ prompt: ' Then the dog said', maxNewTokens: 32 }); // prefills 5 tokens, not 40
 * console.log(b.prefillTokens, session.tokens.length);
 * session.dispose();
 * ```
 */
export class GenerationSession {
  private history: number[];
  private isDisposed = false;
  private busy = false;

  /** @internal use {@link createSession} */
  constructor(
    readonly model: DecoderOnlyModel,
    private kvCache: Cache,
    history: readonly number[],
    readonly tokenizer: Tokenizer | undefined,
    /** Until the first turn: where it may start from and leave its prompt's blocks. */
    private prefixCache: PrefixCache | undefined = undefined,
  ) {
    this.history = [...history];
  }

  /** The session's KV cache: one row holding the conversation but at most its last token. */
  get cache(): Cache {
    return this.kvCache;
  }

  /** Every token of the conversation: those in the cache, then at most one not fed yet (the last generated). */
  get tokens(): readonly number[] {
    return this.history;
  }

  /** Bytes of K/V the session's cache holds. */
  get cacheBytes(): number {
    return this.cache.bytes;
  }

  get disposed(): boolean {
    return this.isDisposed;
  }

  /** Generates a turn; see {@link SessionRequest}. */
  async generate(request: SessionRequest): Promise<SessionResult> {
    const stream = this.generateStream(request);
    for (;;) {
      const next = await stream.next();
      if (next.done) return next.value;
      if (next.value.kind === 'token') request.onToken?.(next.value);
    }
  }

  /** Like {@link generate}, as an async iterable of events (see `generateStream`). */
  async *generateStream(request: SessionRequest): AsyncGenerator<GenerationEvent, SessionResult> {
    this.check();
    if (this.busy) throw new CacheStateError('This session is generating; wait for the turn to end (or fork the session first).');
    rejectUnknownOptions(request, [...GENERATION_OPTIONS, 'prompt', 'inputIds', 'signal', 'onToken'], 'session.generate');
    const turn = this.turnIds(request);
    // what the cache lacks: the last generated token of the turn before, then the turn's ids; at least one position
    // is fed so the model gives logits to continue from
    if (turn.length === 0 && this.cache.length === this.history.length) this.cache.truncate(this.history.length - 1);
    const start = this.cache.length;
    const feed = [...this.history.slice(start), ...turn];
    // the first turn may start from a prefix another session or request computed: only the rest is fed
    const shared = this.prefixCache;
    let reused = 0;
    if (shared && start === 0) {
      const acquired = shared.acquire(feed, feed.length + (request.maxNewTokens ?? 0));
      this.kvCache.dispose();
      this.kvCache = acquired.cache;
      reused = acquired.reused;
    }
    const { prompt: _p, inputIds: _i, onToken: _o, ...options } = request;
    this.busy = true;
    let result: GenerateResult | undefined;
    try {
      result = yield* generateStream(this.model, { ...options, inputIds: [feed.slice(reused)], cache: this.cache, ...(this.tokenizer ? { tokenizer: this.tokenizer } : {}) });
      if (shared && !shared.disposed) {
        shared.insert(feed, this.cache);
        this.prefixCache = undefined;
      }
      return reused > 0 ? { ...result, reusedTokens: reused } : result;
    } catch (e) {
      if (AbortedError.isInstance(e)) result = e.partial as GenerateResult;
      throw e;
    } finally {
      this.busy = false;
      this.settle(start, feed, result);
    }
  }

  /** An independent branch: a copy of the cache and the tokens, advanced separately. */
  fork(): GenerationSession {
    this.check();
    return new GenerationSession(this.model, this.cache.fork(), this.history, this.tokenizer, this.cache.length === 0 ? this.prefixCache : undefined);
  }

  /** Rewinds the conversation to its first `length` tokens (the cache drops what it held past them). */
  truncate(length: number): void {
    this.check();
    if (!Number.isInteger(length) || length < 1 || length > this.history.length)
      throw new InvalidOptionError('length', length, `an integer from 1 to the session's ${this.history.length} tokens`);
    this.history = this.history.slice(0, length);
    if (this.cache.length > length) this.cache.truncate(length);
  }

  dispose(): void {
    if (this.isDisposed) return;
    this.isDisposed = true;
    this.cache.dispose();
  }

  private check(): void {
    if (this.isDisposed) throw new DisposedError('GenerationSession');
  }

  private turnIds(request: SessionRequest): number[] {
    if (request === null || typeof request !== 'object') throw new InvalidOptionError('request', request, 'an options object for session.generate');
    if (request.prompt !== undefined && request.inputIds !== undefined)
      throw new InvalidOptionError('prompt', request.prompt, 'either prompt or inputIds, not both');
    if (request.prompt !== undefined) {
      if (typeof request.prompt !== 'string') throw new InvalidOptionError('prompt', request.prompt, 'a string');
      if (!this.tokenizer) throw new InvalidOptionError('tokenizer', undefined, 'a tokenizer in createSession to encode the prompt text');
      const bos = this.model.config.specialTokens.bos;
      const ids = this.tokenizer.encode(request.prompt);
      return bos !== undefined && ids[0] === bos ? ids.slice(1) : ids;
    }
    if (request.inputIds === undefined) return [];
    if (!Array.isArray(request.inputIds) || !request.inputIds.every((x) => typeof x === 'number'))
      throw new InvalidOptionError('inputIds', request.inputIds, 'an array of token ids');
    return [...request.inputIds];
  }

  /**
   * After a turn (finished or aborted): the history gains the turn's ids and the chosen output (the best beam, the
   * first sample); the cache keeps one row holding a prefix of the history.
   */
  private settle(start: number, feed: readonly number[], result: GenerateResult | undefined): void {
    const out = result?.sequences[0]?.tokens ?? [];
    if (this.cache.batchSize > 1) {
      // beams or samples: their rows agree up to the turn's ids; the output is fed again next turn
      this.cache.reorder([0]);
      if (this.cache.length > start + feed.length) this.cache.truncate(start + feed.length);
    }
    if (this.cache.length < start) throw new CacheStateError('The session cache lost positions it held.');
    this.history = [...this.history.slice(0, start), ...feed, ...out];
    if (this.cache.length > this.history.length) this.cache.truncate(this.history.length);
  }
}

/**
 * A {@link GenerationSession} over a decoder-only model: a cache of one row kept across calls, starting from
 * `options.prefix` (default: the model's BOS token).
 *
 * @example
 * ```ts
 * const session = createSession(model, { tokenizer });
 * for (const line of ['Once upon a time', ' The cat']) console.log((await session.generate({ prompt: line, maxNewTokens: 20 })).sequences[0].text);
 * ```
 */
export function createSession(model: DecoderOnlyModel, options: SessionOptions = {}): GenerationSession {
  if (options === null || typeof options !== 'object') throw new InvalidOptionError('options', options, 'an options object for createSession');
  rejectUnknownOptions(options, ['tokenizer', 'cache', 'prefix', 'kvDtype', 'prefixCache'], 'createSession');
  const shared = options.prefixCache;
  if (shared !== undefined) {
    if (shared === null || typeof shared !== 'object' || typeof (shared as Partial<PrefixCache>).acquire !== 'function' || shared.disposed || shared.model !== model)
      throw new InvalidOptionError('prefixCache', shared, 'a PrefixCache from createPrefixCache(model) for this model, not disposed');
    if ((options.cache !== undefined && options.cache !== shared.cacheMode) || (options.kvDtype !== undefined && options.kvDtype !== shared.kvDtype))
      throw new InvalidOptionError(options.cache !== undefined ? 'cache' : 'kvDtype', options.cache ?? options.kvDtype, "no cache or kvDtype with prefixCache (the session's are the prefix cache's)");
  }
  if (options.kvDtype !== undefined && !KV_DTYPES.includes(options.kvDtype)) throw new InvalidOptionError('kvDtype', options.kvDtype, "'fp32', 'fp16' or 'int8'");
  if (options.cache !== undefined && !['auto', 'backend', 'concat'].includes(options.cache))
    throw new InvalidOptionError('cache', options.cache, "'auto', 'backend' or 'concat'");
  const bos = model.config.specialTokens.bos;
  const prefix = options.prefix ?? (bos !== undefined ? [bos] : []);
  if (!Array.isArray(prefix) || prefix.some((id) => !Number.isInteger(id) || id < 0 || id >= model.config.vocabSize))
    throw new InvalidOptionError('prefix', options.prefix, `token ids in [0, ${model.config.vocabSize})`);
  if (prefix.length === 0) throw new InvalidInputError('createSession: the model has no BOS token; give options.prefix (at least one id).');
  const [kind, kvDtype] = shared ? [shared.cacheMode, shared.kvDtype] : [options.cache ?? 'auto', options.kvDtype ?? 'fp32'];
  const cache = model.createCache({ batchSize: 1, kind, ...(kvDtype !== 'fp32' ? { kvDtype } : {}) });
  return new GenerationSession(model, cache, prefix, options.tokenizer, shared);
}

/**
 * A {@link GenerationSession} that continues from a cache already holding `tokens` (all of them, or all but the last
 * generated one): what restoring a saved session builds. The session owns the cache from then on.
 *
 * @example
 * ```ts
 * const session = resumeSession(model, cache, tokens, { tokenizer });
 * ```
 */
export function resumeSession(model: DecoderOnlyModel, cache: Cache, tokens: readonly number[], options: { tokenizer?: Tokenizer } = {}): GenerationSession {
  if (cache.batchSize !== 1 || cache.length > tokens.length || cache.length < tokens.length - 1)
    throw new CacheStateError(`A session cache holds one row and the K/V of all its tokens but at most the last (got ${cache.batchSize} rows, ${cache.length} positions for ${tokens.length} tokens).`);
  return new GenerationSession(model, cache, tokens, options.tokenizer);
}
