import type { Rng } from './rng.js';
import { softmax } from './logits-processors.js';

/**
 * One row's next-token distribution at one step: the processed logits and their softmax, computed at most once and
 * shared by the warpers (top-p, min-p), the sampler and the chosen token's probability. Removing a token zeroes its
 * probability without recomputing the softmax; probabilities are renormalized over what is left when read.
 *
 * @example
 * ```ts
 * const d = new TokenDistribution(logits);
 * topP(0.9)(d);
 * const token = d.sample(rng);
 * ```
 */
export class TokenDistribution {
  private probs: Float64Array | null = null;
  /** Sum of the probabilities not removed; NaN when it must be recomputed. */
  private mass = 1;

  constructor(readonly logits: Float32Array) {}

  /** softmax(logits) as first computed, removed tokens at 0 (not renormalized: divide by {@link remaining}). */
  probabilities(): Float64Array {
    if (!this.probs) {
      this.probs = softmax(this.logits);
      this.mass = 1;
    }
    return this.probs;
  }

  /** Probability mass of the tokens not removed. */
  remaining(): number {
    const p = this.probabilities();
    if (Number.isNaN(this.mass)) {
      let s = 0;
      for (let i = 0; i < p.length; i++) s += p[i]!;
      this.mass = s;
    }
    return this.mass;
  }

  /** Removes token `i`: logit −∞, probability 0. */
  remove(i: number): void {
    this.logits[i] = -Infinity;
    if (this.probs && this.probs[i] !== 0) {
      this.probs[i] = 0;
      this.mass = NaN;
    }
  }

  /** log p(i) over the tokens not removed. */
  logProbability(i: number): number {
    return Math.log(this.probabilities()[i]! / this.remaining());
  }

  /** Draws a token with `rng` in proportion to the probabilities not removed. */
  sample(rng: Rng): number {
    const p = this.probabilities();
    const r = rng.next() * this.remaining();
    let cumulative = 0;
    let last = 0;
    for (let i = 0; i < p.length; i++) {
      if (p[i]! > 0) last = i;
      cumulative += p[i]!;
      if (r < cumulative) return i;
    }
    return last; // rounding left r above the total
  }
}

/** Changes a distribution in place (top-p, min-p): works on the shared probabilities. */
export type DistributionWarper = (distribution: TokenDistribution) => void;

/** Nucleus: keep the most likely tokens until their probability reaches p (at least one token). */
export function topP(p: number): DistributionWarper {
  return (d) => {
    if (p >= 1) return;
    const probs = d.probabilities();
    const total = d.remaining();
    let max = 0;
    for (const v of probs) if (v > max) max = v;
    // Sort only the likely tokens when they already reach p (every other token is less likely than all of them, so
    // the nucleus is the same); else sort every token.
    const likely = (floor: number) => {
      const ids: number[] = [];
      for (let i = 0; i < probs.length; i++) if (probs[i]! > 0 && probs[i]! >= floor) ids.push(i);
      return ids.sort((a, b) => probs[b]! - probs[a]! || a - b);
    };
    let order = likely(max / 1024);
    let mass = 0;
    for (const i of order) mass += probs[i]!;
    if (mass / total < p) order = likely(0);
    let cumulative = 0;
    let keep = 0;
    while (keep < order.length) {
      cumulative += probs[order[keep]!]! / total;
      keep++;
      if (cumulative >= p) break;
    }
    const kept = new Set(order.slice(0, keep));
    for (let i = 0; i < probs.length; i++) if (probs[i]! > 0 && !kept.has(i)) d.remove(i);
  };
}

/** Drop tokens whose probability is below m × the highest probability. */
export function minP(m: number): DistributionWarper {
  return (d) => {
    if (m <= 0) return;
    const probs = d.probabilities();
    let max = 0;
    for (const v of probs) if (v > max) max = v;
    for (let i = 0; i < probs.length; i++) if (probs[i]! < m * max) d.remove(i);
  };
}

/** The warpers a sampling config asks for, in order (top-p, then min-p); none for greedy decoding. */
export function buildWarpers(o: { readonly temperature: number; readonly topP: number; readonly minP: number }): DistributionWarper[] {
  if (o.temperature <= 0) return [];
  const list: DistributionWarper[] = [];
  if (o.topP < 1) list.push(topP(o.topP));
  if (o.minP > 0) list.push(minP(o.minP));
  return list;
}
