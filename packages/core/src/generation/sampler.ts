import type { Rng } from './rng.js';
import { TokenDistribution } from './distribution.js';

/** Index of the largest value; the lowest index wins ties (as llama2.c's argmax). */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < values.length; i++) {
    if (values[i]! > bestValue) {
      bestValue = values[i]!;
      best = i;
    }
  }
  return best;
}

/**
 * Greedy choice over a model's logits row in one pass: the index of the largest value (lowest index on ties), or −1
 * when some value is NaN or infinite (then {@link firstNonFinite} names it). Reads the row in place (no copy).
 */
export function argmaxFinite(values: Float32Array): number {
  let best = 0;
  let bestValue = -Infinity;
  let finite = true;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v > bestValue) {
      bestValue = v;
      best = i;
    }
    if (v - v !== 0) finite = false; // NaN and ±∞ give NaN
  }
  return finite ? best : -1;
}

/** Draws one index from softmax(logits) with `rng`. */
export function sampleFromLogits(logits: ArrayLike<number>, rng: Rng): number {
  return new TokenDistribution(Float32Array.from(logits)).sample(rng);
}

/**
 * Chooses a row's next token from its processed distribution: greedy (argmax) or by sampling with the config's
 * seeded random numbers. Beam search chooses by groups instead (`beam-search.ts`).
 */
export type Sampler = (distribution: TokenDistribution) => number;

/** The sampler a config asks for. */
export function chooseSampler(sampling: boolean, rng: Rng): Sampler {
  return sampling ? (d) => d.sample(rng) : (d) => argmax(d.logits);
}

/** Index of the first logit that is NaN or infinite (what a broken model gives), or −1. */
export function firstNonFinite(logits: ArrayLike<number>): number {
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i]!;
    if (v - v !== 0) return i; // NaN and ±∞ give NaN
  }
  return -1;
}
