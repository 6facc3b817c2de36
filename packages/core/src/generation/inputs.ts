import { KV_DTYPES, type KVDtype } from '../contracts/cache.js';
import { InvalidInputError, InvalidOptionError, PromptTooLongError, TokenOutOfRangeError } from '../errors.js';

/** Checks a batch of id sequences: non-empty, integer ids inside `[0, vocabSize)`, and room for `newTokens` more. */
export function validateIdBatch(
  batch: readonly (readonly number[])[],
  vocabSize: number,
  maxPositions: number,
  newTokens: number,
  what: string,
): void {
  if (!Array.isArray(batch) || batch.length === 0)
    throw new InvalidInputError(`${what}: give at least one sequence of token ids.`);
  batch.forEach((ids, i) => {
    if (!Array.isArray(ids)) throw new InvalidInputError(`${what}[${i}] is not an array of token ids.`);
    if (ids.length === 0)
      throw new InvalidInputError(`${what}[${i}] is empty; give at least one token (for example the BOS token).`);
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw new TokenOutOfRangeError(id, vocabSize, `${what}[${i}]`);
    }
    // the last new token is never fed back: prompt + new − 1 positions are used
    if (ids.length > maxPositions || ids.length + newTokens - 1 > maxPositions) throw new PromptTooLongError(ids.length, newTokens, maxPositions);
  });
}

/** Normalizes `number[] | number[][]` to a batch. */
export function asBatch(ids: readonly number[] | readonly (readonly number[])[], what: string): number[][] {
  if (!Array.isArray(ids)) throw new InvalidOptionError(what, ids, 'an array of token ids or an array of such arrays');
  if (ids.length > 0 && ids.every((x) => Array.isArray(x))) return (ids as readonly (readonly number[])[]).map((r) => [...r]);
  if (ids.every((x) => typeof x === 'number')) return [[...(ids as readonly number[])]];
  throw new InvalidOptionError(what, ids, 'an array of token ids or an array of such arrays');
}

/** Throws the signal's abort as the error `makeError` builds. */
export function abortChecker(signal: AbortSignal | undefined, makeError: (reason: unknown) => Error): () => void {
  return () => {
    if (signal?.aborted) throw makeError(signal.reason);
  };
}

const CACHE_MODES = ['auto', 'backend', 'concat', 'none'];

/**
 * Checks the types of a request's non-generation fields (tokenizer, callbacks, signal, cache mode) before any work:
 * a wrong type is an {@link InvalidOptionError}, never a `TypeError` deep inside.
 */
export function checkRequest(
  request: { tokenizer?: unknown; targetTokenizer?: unknown; onToken?: unknown; signal?: unknown; cache?: unknown; kvDtype?: unknown },
  call: string,
): void {
  if (request === null || typeof request !== 'object') throw new InvalidOptionError('request', request, `an options object for ${call}`);
  for (const name of ['tokenizer', 'targetTokenizer'] as const) {
    const t = request[name] as Record<string, unknown> | undefined;
    if (t === undefined) continue;
    if (t === null || typeof t !== 'object' || ['encode', 'decode', 'createStreamDecoder'].some((m) => typeof t[m] !== 'function'))
      throw new InvalidOptionError(name, t, 'a Tokenizer (encode, decode, createStreamDecoder), such as the one loadModel returns');
  }
  if (request.onToken !== undefined && typeof request.onToken !== 'function')
    throw new InvalidOptionError('onToken', request.onToken, 'a function called with each token event');
  const s = request.signal as { aborted?: unknown; addEventListener?: unknown } | undefined;
  if (s !== undefined && (s === null || typeof s !== 'object' || typeof s.aborted !== 'boolean' || typeof s.addEventListener !== 'function'))
    throw new InvalidOptionError('signal', s, 'an AbortSignal (new AbortController().signal, AbortSignal.timeout(ms))');
  if (request.kvDtype !== undefined && !KV_DTYPES.includes(request.kvDtype as KVDtype))
    throw new InvalidOptionError('kvDtype', request.kvDtype, "'fp32', 'fp16' or 'int8'");
  const c = request.cache as Record<string, unknown> | undefined;
  if (c !== null && typeof c === 'object') {
    if (!['generate', 'translate'].includes(call) || ['reorder', 'truncate', 'fork', 'dispose'].some((m) => typeof c[m] !== 'function') || typeof c.batchSize !== 'number')
      throw new InvalidOptionError('cache', c, ['generate', 'translate'].includes(call) ? "a cache from model.createCache, or 'auto', 'backend', 'concat' or 'none'" : "'auto', 'backend', 'concat' or 'none'");
    if (c.disposed === true) throw new InvalidOptionError('cache', c, 'a cache that is not disposed');
  } else if (c !== undefined && !CACHE_MODES.includes(c as unknown as string))
    throw new InvalidOptionError('cache', c, ['generate', 'translate'].includes(call) ? "'auto', 'backend', 'concat', 'none', or a cache from model.createCache" : "'auto', 'backend', 'concat' or 'none'");
}
