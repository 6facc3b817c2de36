import { InvalidOptionError } from '@kvt/core';

/** Throws InvalidOptionError unless every listed field is a positive integer. */
export function requirePositiveIntegers(config: object, fields: readonly string[], where: string): void {
  for (const f of fields) {
    const v = (config as Record<string, unknown>)[f];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1)
      throw new InvalidOptionError(`${where}.${f}`, v, 'a positive integer');
  }
}

/** The most positions kvt accepts from a config (a larger value is a corrupt or hostile header). */
export const MAX_POSITIONS = 1 << 20;

export function requirePlausiblePositions(maxPositions: number, where: string): void {
  if (maxPositions > MAX_POSITIONS)
    throw new InvalidOptionError(`${where}.maxPositions`, maxPositions, `at most ${MAX_POSITIONS}`);
}
