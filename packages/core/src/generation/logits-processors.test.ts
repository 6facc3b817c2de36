import { describe, expect, it } from 'vitest';
import { createRng } from './rng.js';
import {
  beginSuppressTokens,
  buildLogitsProcessors,
  forcedBos,
  forcedEos,
  minLength,
  minNewTokens,
  noBadWords,
  noRepeatNgram,
  repetitionPenalty,
  softmax,
  suppressTokens,
  temperature,
  topK,
  type ProcessorContext,
} from './logits-processors.js';
import { TokenDistribution, buildWarpers, minP, topP } from './distribution.js';
import { argmax, sampleFromLogits } from './sampler.js';

const logits = () => Float32Array.from([2, 1, 0, -1, 3]);
// softmax of [2,1,0,-1,3]: ≈ [0.2341, 0.0861, 0.0317, 0.0117, 0.6364]
const at = (history: number[], promptLength = 0): ProcessorContext => ({ history, promptLength, step: history.length - promptLength });
const kept = (l: Float32Array) => Array.from(l.keys()).filter((i) => l[i]! > -Infinity);

describe('logits processors on hand-made logits', () => {
  it('temperature divides the logits', () => {
    const l = logits();
    temperature(2)(l, at([]));
    expect(Array.from(l)).toEqual([1, 0.5, 0, -0.5, 1.5]);
  });

  it('top-k keeps the k largest', () => {
    const l = logits();
    topK(2)(l, at([]));
    expect(Array.from(l)).toEqual([2, -Infinity, -Infinity, -Infinity, 3]);
  });

  it('top-p keeps the smallest set reaching p, on the shared softmax', () => {
    const run = (p: number) => {
      const d = new TokenDistribution(logits());
      topP(p)(d);
      return d;
    };
    expect(Array.from(run(0.8).logits)).toEqual([2, -Infinity, -Infinity, -Infinity, 3]); // 0.636 + 0.234 ≥ 0.8
    expect(Array.from(run(0.5).logits)).toEqual([-Infinity, -Infinity, -Infinity, -Infinity, 3]); // the top alone
    expect(kept(run(0.9).logits)).toEqual([0, 1, 4]); // 0.870 < 0.9 → a third token
    // probabilities of what is left renormalize: p(4 | {0, 4}) = 0.636 / 0.870
    expect(Math.exp(run(0.8).logProbability(4))).toBeCloseTo(0.6364 / 0.8705, 3);
  });

  it('top-p over a long tail sorts only the likely tokens and keeps the same set', () => {
    const rng = createRng(11);
    const l = Float32Array.from({ length: 5000 }, (_, i) => (i < 20 ? 8 + rng.next() : rng.next() * 2));
    const d = new TokenDistribution(Float32Array.from(l));
    topP(0.9)(d);
    // reference: sort every token
    const p = softmax(l);
    const order = Array.from(p.keys()).sort((a, b) => p[b]! - p[a]! || a - b);
    let c = 0;
    let k = 0;
    while (c < 0.9) c += p[order[k++]!]!;
    expect(kept(d.logits)).toEqual(order.slice(0, k).sort((a, b) => a - b));
  });

  it('min-p drops tokens below minP × max probability', () => {
    const d = new TokenDistribution(logits());
    minP(0.1)(d); // threshold 0.0636: keeps 0.234, 0.0861, 0.636
    expect(Array.from(d.logits)).toEqual([2, 1, -Infinity, -Infinity, 3]);
  });

  it('the softmax is computed once for the warpers and the sampler', () => {
    const d = new TokenDistribution(logits());
    const first = d.probabilities();
    topP(0.9)(d);
    minP(0.2)(d);
    expect(d.probabilities()).toBe(first);
    expect(first[2]).toBe(0);
  });

  it('repetition penalty divides positive and multiplies negative logits of seen tokens (once each)', () => {
    const l = logits();
    repetitionPenalty(2)(l, at([0, 3, 3]));
    expect(Array.from(l)).toEqual([1, 1, 0, -2, 3]);
    const again = logits();
    repetitionPenalty(2)(again, at([0, 3, 3])); // its marks were cleared
    expect(Array.from(again)).toEqual([1, 1, 0, -2, 3]);
  });

  it('no-repeat n-grams bans what would complete a seen n-gram (prompt included)', () => {
    const l = logits();
    noRepeatNgram(2)(l, at([1, 4, 2, 1], 2)); // bigrams (1,4) (4,2) (2,1); last token 1 → 4 banned
    expect(kept(l)).toEqual([0, 1, 2, 3]);
    const tri = logits();
    noRepeatNgram(3)(tri, at([1, 4, 2, 1, 4])); // (1,4,2) seen; tail (1,4) → 2 banned
    expect(kept(tri)).toEqual([0, 1, 3, 4]);
    const short = logits();
    noRepeatNgram(3)(short, at([1])); // too short to repeat anything
    expect(kept(short)).toEqual([0, 1, 2, 3, 4]);
  });

  it('bad words: single tokens always, sequences when the rest was just generated', () => {
    const l = logits();
    noBadWords([[3], [1, 4], [2, 2, 0]])(l, at([5, 1]));
    expect(kept(l)).toEqual([0, 1, 2]); // 3 always, 4 after 1; [2,2,0] does not apply
    const m = logits();
    noBadWords([[2, 2, 0]])(m, at([2, 2]));
    expect(kept(m)).toEqual([1, 2, 3, 4]);
  });

  it('min length and min new tokens ban end-of-sequence until reached', () => {
    const a = logits();
    minLength(4, [4, 3])(a, at([1, 2, 3]));
    expect(kept(a)).toEqual([0, 1, 2]);
    const b = logits();
    minLength(4, [4])(b, at([1, 2, 3, 0]));
    expect(kept(b)).toEqual([0, 1, 2, 3, 4]);
    const c = logits();
    minNewTokens(2, [4])(c, at([9, 9, 1], 2)); // one new token so far
    expect(kept(c)).toEqual([0, 1, 2, 3]);
    const d = logits();
    minNewTokens(2, [4])(d, at([9, 9, 1, 2], 2));
    expect(kept(d)).toEqual([0, 1, 2, 3, 4]);
  });

  it('forced BOS after the start token, forced EOS at the last new token', () => {
    const a = logits();
    forcedBos(2)(a, at([0], 1));
    expect(argmax(a)).toBe(2);
    expect(kept(a)).toEqual([2]);
    const b = logits();
    forcedBos(2)(b, at([0, 1], 1));
    expect(kept(b)).toHaveLength(5);
    const c = logits();
    forcedEos(1, 3)(c, { history: [0, 4, 4], promptLength: 1, step: 2 });
    expect(kept(c)).toEqual([1]);
    const d = logits();
    forcedEos(1, 3)(d, { history: [0, 4], promptLength: 1, step: 1 });
    expect(kept(d)).toHaveLength(5);
  });

  it('suppressed tokens always, begin-suppressed ones at the first new token only', () => {
    const a = logits();
    suppressTokens([4, 0])(a, at([1], 1));
    expect(kept(a)).toEqual([1, 2, 3]);
    const b = logits();
    beginSuppressTokens([4])(b, at([1], 1));
    expect(kept(b)).toEqual([0, 1, 2, 3]);
    const c = logits();
    beginSuppressTokens([4])(c, at([1, 2], 1));
    expect(kept(c)).toEqual([0, 1, 2, 3, 4]);
  });

  it('a config lists its processors in Hugging Face order; greedy runs no warpers', () => {
    const greedy = { temperature: 0, topK: 2, topP: 0.5, minP: 0.1, repetitionPenalty: 1 };
    expect(buildLogitsProcessors(greedy)).toHaveLength(0);
    expect(buildWarpers(greedy)).toHaveLength(0);
    const sampling = { temperature: 0.5, topK: 2, topP: 0.5, minP: 0.1, repetitionPenalty: 1.2 };
    expect(buildLogitsProcessors(sampling)).toHaveLength(3);
    expect(buildWarpers(sampling)).toHaveLength(2);
    // a user's processor runs after kvt's bans and before temperature
    let seen: { suppressed: boolean; tempered: boolean } | undefined;
    const mine = (l: Float32Array) => void (seen = { suppressed: l[1] === -Infinity, tempered: l[0] !== 2 });
    const l = logits();
    for (const p of buildLogitsProcessors({ ...sampling, suppressTokens: [1], logitsProcessors: [mine] })) p(l, at([]));
    expect(seen).toEqual({ suppressed: true, tempered: false });
    expect(l[0]).toBe(4); // then divided by the temperature
  });

  it('softmax sums to one', () => {
    const p = softmax([1000, 1000, 999]);
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
  });
});

describe('sampler', () => {
  it('argmax takes the first of ties', () => {
    expect(argmax([1, 3, 3, 2])).toBe(1);
  });

  it('same seed, same draws; frequencies follow softmax', () => {
    const draw = (seed: number) => {
      const rng = createRng(seed);
      return Array.from({ length: 20000 }, () => sampleFromLogits(logits(), rng));
    };
    const a = draw(7);
    expect(draw(7)).toEqual(a);
    expect(draw(8)).not.toEqual(a);
    const p = softmax(logits());
    for (let t = 0; t < 5; t++) {
      const freq = a.filter((x) => x === t).length / a.length;
      expect(Math.abs(freq - p[t]!)).toBeLessThan(0.015);
    }
  });

  it('never draws a removed token; removed mass is renormalized', () => {
    const rng = createRng(3);
    let fours = 0;
    for (let i = 0; i < 4000; i++) {
      const d = new TokenDistribution(logits());
      topP(0.8)(d); // {0, 4}: p(4) = 0.731
      const t = d.sample(rng);
      expect([0, 4]).toContain(t);
      if (t === 4) fours++;
    }
    expect(Math.abs(fours / 4000 - 0.6364 / 0.8705)).toBeLessThan(0.03);
  });
});
