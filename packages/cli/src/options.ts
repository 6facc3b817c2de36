import { InvalidOptionError } from '@kvt/core';

/** commander option parsers that throw typed errors (exit code 2) instead of printing their own. */
export const int = (flag: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new InvalidOptionError(flag, v, 'an integer');
  return n;
};
export const float = (flag: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new InvalidOptionError(flag, v, 'a number');
  return n;
};

/** Drops undefined values, so options can be spread into generation requests under exactOptionalPropertyTypes. */
export function defined<T extends object>(o: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as never;
}
