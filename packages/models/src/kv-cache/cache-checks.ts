import { CacheStateError } from '@kvt/core';

/** The argument checks every KV cache shares, so each implementation keeps only its storage logic. */
export const cacheChecks = {
  /** setPadding: only on an empty cache, one entry per row. */
  padding(padding: readonly number[], rows: number, length: number): number[] {
    if (length !== 0) throw new CacheStateError('setPadding is only allowed on an empty cache.');
    if (padding.length !== rows) throw new CacheStateError(`setPadding needs ${rows} rows, got ${padding.length}.`);
    return [...padding];
  },
  /** reorder: every index names an existing row. */
  reorder(indices: readonly number[], rows: number): void {
    for (const i of indices)
      if (!Number.isInteger(i) || i < 0 || i >= rows) throw new CacheStateError(`reorder index ${i} is outside the cache's ${rows} rows.`);
  },
  /** truncate: back to a length the cache holds. */
  truncate(length: number, current: number): void {
    if (!Number.isInteger(length) || length < 0 || length > current)
      throw new CacheStateError(`truncate(${length}): the cache holds ${current} positions.`);
  },
  /** append: never past the model's positions. */
  room(current: number, added: number, maxLength: number): void {
    if (current + added > maxLength)
      throw new CacheStateError(`The cache holds ${current} positions; ${added} more would pass the model's ${maxLength}.`);
  },
};
