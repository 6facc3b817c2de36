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
    if (ids.length + newTokens > maxPositions) throw new PromptTooLongError(ids.length, newTokens, maxPositions);
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
