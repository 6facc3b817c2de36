import type { Rng } from './rng.js';
import { softmax } from './logits-processors.js';

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

/** Draws one index from softmax(logits) with `rng`. */
export function sampleFromLogits(logits: ArrayLike<number>, rng: Rng): number {
  const probs = softmax(logits);
  const r = rng.next();
  let cumulative = 0;
  let last = 0;
  for (let i = 0; i < probs.length; i++) {
    if (probs[i]! > 0) last = i;
    cumulative += probs[i]!;
    if (r < cumulative) return i;
  }
  return last; // rounding left r above the total
}
