import { InvalidOptionError, type SpecialTokens } from '@kvt/core';

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

/** Throws InvalidOptionError unless `value` (when given) is a finite number > 0 (norm epsilons, rope theta). */
export function requirePositiveFinite(value: number | undefined, name: string): void {
  if (value !== undefined && !(typeof value === 'number' && Number.isFinite(value) && value > 0))
    throw new InvalidOptionError(name, value, 'a finite number > 0');
}

/** Throws InvalidOptionError unless every special token id lies inside the vocabulary. */
export function requireTokenIds(tokens: SpecialTokens, vocabSize: number, where: string): void {
  const check = (name: string, id: number | undefined) => {
    if (id !== undefined && !(Number.isInteger(id) && id >= 0 && id < vocabSize))
      throw new InvalidOptionError(`${where}.specialTokens.${name}`, id, `a token id in [0, ${vocabSize})`);
  };
  check('bos', tokens.bos);
  check('pad', tokens.pad);
  check('decoderStart', tokens.decoderStart);
  tokens.eos.forEach((id) => check('eos', id));
}
