import { KV_DTYPES, type Cache, type KVDtype } from '../contracts/cache.js';
import type { DecoderOnlyModel } from '../contracts/model.js';
import { DisposedError, InvalidOptionError } from '../errors.js';
import { rejectUnknownOptions } from './option-names.js';
import type { SessionCacheMode } from './generation-session.js';

export interface PrefixCacheOptions {
  /**
   * Most bytes of K/V the cached prefixes hold, each counted in full (blocks they share with each other or with
   * running requests are counted per prefix, so the real total is at most this); the least recently used prefix is
   * dropped first. Default 64 MiB.
   */
  readonly maxBytes?: number;
  /** Which cache the prefixes and the requests that reuse them use (default 'auto', as `generate`). */
  readonly cache?: SessionCacheMode;
  /** How they store K/V (default 'fp32'). */
  readonly kvDtype?: KVDtype;
}

/** What a {@link PrefixCache} has done: lookups that reused blocks, lookups that found none, and positions reused. */
export interface PrefixCacheStats {
  readonly hits: number;
  readonly misses: number;
  readonly reusedTokens: number;
}

/** One cached prompt prefix: its first `tokens.length` positions (whole blocks) in a one-row cache. */
interface Entry {
  readonly tokens: readonly number[];
  /** Chain hash of each of its blocks: `hashes[i]` names the prefix of blocks 0..i. */
  readonly hashes: readonly string[];
  readonly cache: Cache;
  lastUsed: number;
}

/**
 * Reuses the K/V of prompt prefixes across requests, as vLLM's automatic prefix caching does: a prompt's whole
 * blocks are keyed by a chain hash of their tokens (block i's key covers blocks 0..i), so a new request that starts
 * with the same blocks (a shared system prompt, an earlier turn, few-shot examples) starts from a cache that already
 * holds them and prefills only the rest. On a paged backend cache (wasm) the request's cache shares the prefix's
 * blocks (copy on write), so reuse copies no K/V; on other caches the prefix is copied (a fork). Pass it to
 * `generate` as `prefixCache`; one prompt per request.
 *
 * @example
 * ```ts
 * const prefixCache = createPrefixCache(model, { maxBytes: 32 << 20 });
 * const system = 'You are a storyteller. Tell short stories for children about animals.';
 * await generate(model, { prompt: `${system} A cat`, tokenizer, prefixCache });
 * const r = await generate(model, { prompt: `${system} A dog`, tokenizer, prefixCache });
 * console.log(r.reusedTokens, r.prefillTokens); // the system prompt's whole blocks reused; the rest computed
 * prefixCache.dispose();
 * ```
 */
export class PrefixCache {
  /** Positions per block: prefixes are reused in whole blocks (the paged cache's block, else 16). */
  readonly blockSize: number;
  readonly maxBytes: number;
  readonly cacheMode: SessionCacheMode;
  readonly kvDtype: KVDtype;
  private readonly index = new Map<string, Entry>();
  private entries: Entry[] = [];
  private clock = 0;
  private counts = { hits: 0, misses: 0, reusedTokens: 0 };
  private isDisposed = false;

  /** @internal use {@link createPrefixCache} */
  constructor(
    readonly model: DecoderOnlyModel,
    options: PrefixCacheOptions,
  ) {
    this.maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
    this.cacheMode = options.cache ?? 'auto';
    this.kvDtype = options.kvDtype ?? 'fp32';
    const probe = this.createCache(0);
    this.blockSize = probe.blockSize ?? 16;
    probe.dispose();
  }

  /** Prefixes held. */
  get size(): number {
    return this.entries.length;
  }
  /** Bytes of K/V the prefixes hold, each counted in full (see {@link PrefixCacheOptions.maxBytes}). */
  get bytes(): number {
    return this.entries.reduce((sum, e) => sum + e.cache.bytes, 0);
  }
  get stats(): PrefixCacheStats {
    return { ...this.counts };
  }
  get disposed(): boolean {
    return this.isDisposed;
  }

  /**
   * A one-row cache for a request with prompt `ids`: holding the longest cached prefix of whole blocks that leaves
   * at least one token to compute (`reused` positions), or empty. The caller owns it.
   */
  acquire(ids: readonly number[], capacityHint: number): { cache: Cache; reused: number } {
    this.check();
    const usable = Math.floor((ids.length - 1) / this.blockSize);
    const hashes = this.chainHashes(ids, usable);
    for (let i = hashes.length - 1; i >= 0; i--) {
      const entry = this.index.get(hashes[i]!);
      const reused = (i + 1) * this.blockSize;
      // the hash names the blocks; the tokens decide (no collision reuses another prompt's K/V)
      if (!entry || !sameTokens(entry.tokens, ids, reused)) continue;
      entry.lastUsed = ++this.clock;
      const cache = entry.cache.fork();
      if (cache.length > reused) cache.truncate(reused);
      this.counts.hits++;
      this.counts.reusedTokens += reused;
      return { cache, reused };
    }
    this.counts.misses++;
    return { cache: this.createCache(capacityHint), reused: 0 };
  }

  /**
   * Keeps the whole blocks of prompt `ids` that row 0 of `cache` holds (after the prompt's prefill), as a fork:
   * nothing is copied on a paged cache. A prefix already held is only marked as used; one that a new prefix extends
   * is replaced by it.
   */
  insert(ids: readonly number[], cache: Cache): void {
    this.check();
    const blocks = Math.floor(Math.min(ids.length, cache.length) / this.blockSize);
    if (blocks === 0) return;
    const hashes = this.chainHashes(ids, blocks);
    const held = this.index.get(hashes[blocks - 1]!);
    if (held && sameTokens(held.tokens, ids, blocks * this.blockSize)) {
      held.lastUsed = ++this.clock;
      return;
    }
    const copy = cache.fork();
    if (copy.batchSize > 1) copy.reorder([0]);
    copy.truncate(blocks * this.blockSize);
    const entry: Entry = { tokens: ids.slice(0, blocks * this.blockSize), hashes, cache: copy, lastUsed: ++this.clock };
    // prefixes this one extends are covered by it
    for (const old of this.entries.filter((e) => e.tokens.length < entry.tokens.length && sameTokens(e.tokens, ids, e.tokens.length))) this.remove(old);
    this.entries.push(entry);
    for (const h of hashes) this.index.set(h, entry);
    this.evict();
  }

  /** Drops every prefix (running requests keep the blocks they share). */
  clear(): void {
    for (const e of [...this.entries]) this.remove(e);
  }

  dispose(): void {
    if (this.isDisposed) return;
    this.clear();
    this.isDisposed = true;
  }

  private createCache(capacityHint: number): Cache {
    return this.model.createCache({ batchSize: 1, capacityHint, kind: this.cacheMode, ...(this.kvDtype !== 'fp32' ? { kvDtype: this.kvDtype } : {}) });
  }

  /** Least recently used first, until the prefixes fit in `maxBytes`. */
  private evict(): void {
    let bytes = this.bytes;
    while (bytes > this.maxBytes && this.entries.length > 0) {
      const oldest = this.entries.reduce((a, b) => (b.lastUsed < a.lastUsed ? b : a));
      bytes -= oldest.cache.bytes;
      this.remove(oldest);
    }
  }

  private remove(entry: Entry): void {
    this.entries = this.entries.filter((e) => e !== entry);
    for (const h of entry.hashes) {
      if (this.index.get(h) !== entry) continue;
      // another prefix may hold the same blocks
      const other = this.entries.find((e) => e.hashes.includes(h));
      if (other) this.index.set(h, other);
      else this.index.delete(h);
    }
    entry.cache.dispose();
  }

  /** Chain hashes of the first `blocks` blocks of `ids` (FNV-1a over the previous block's hash and the block's ids). */
  private chainHashes(ids: readonly number[], blocks: number): string[] {
    const out: string[] = [];
    let [a, b] = [0x811c9dc5, 0x6c62272e];
    for (let i = 0; i < blocks; i++) {
      for (let j = i * this.blockSize; j < (i + 1) * this.blockSize; j++) {
        a = Math.imul(a ^ ids[j]!, 0x01000193) >>> 0;
        b = Math.imul(b ^ (ids[j]! + 0x9e3779b9), 0x01000193) >>> 0;
      }
      out.push(`${i}:${a.toString(36)}:${b.toString(36)}`);
    }
    return out;
  }

  private check(): void {
    if (this.isDisposed) throw new DisposedError('PrefixCache');
  }
}

function sameTokens(held: readonly number[], ids: readonly number[], n: number): boolean {
  if (held.length < n || ids.length < n) return false;
  for (let i = 0; i < n; i++) if (held[i] !== ids[i]) return false;
  return true;
}

/**
 * A {@link PrefixCache} for `model`: pass it to `generate` as `prefixCache` so requests that share whole blocks of a
 * prompt prefix reuse their K/V.
 *
 * @example
 * ```ts
 * const prefixCache = createPrefixCache(model);
 * for (const question of questions) await generate(model, { prompt: systemPrompt + question, tokenizer, prefixCache });
 * console.log(prefixCache.stats); // { hits, misses, reusedTokens }
 * ```
 */
export function createPrefixCache(model: DecoderOnlyModel, options: PrefixCacheOptions = {}): PrefixCache {
  if (options === null || typeof options !== 'object') throw new InvalidOptionError('options', options, 'an options object for createPrefixCache');
  rejectUnknownOptions(options, ['maxBytes', 'cache', 'kvDtype'], 'createPrefixCache');
  if (options.maxBytes !== undefined && (typeof options.maxBytes !== 'number' || !(options.maxBytes >= 0)))
    throw new InvalidOptionError('maxBytes', options.maxBytes, 'a number of bytes ≥ 0');
  if (options.cache !== undefined && !['auto', 'backend', 'concat'].includes(options.cache))
    throw new InvalidOptionError('cache', options.cache, "'auto', 'backend' or 'concat'");
  if (options.kvDtype !== undefined && !KV_DTYPES.includes(options.kvDtype)) throw new InvalidOptionError('kvDtype', options.kvDtype, "'fp32', 'fp16' or 'int8'");
  return new PrefixCache(model, options);
}
