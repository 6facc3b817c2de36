import { InvalidOptionError } from '@kvt/core';

/** Throws InvalidOptionError unless every listed field is a positive integer. */
export function requirePositiveIntegers(config: object, fields: readonly string[], where: string): void {
  for (const f of fields) {
    const v = (config as Record<string, unknown>)[f];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1)
      throw new InvalidOptionError(`${where}.${f}`, v, 'a positive integer');
  }
}
