import { describe, expect, it } from 'vitest';
import { createRng } from './rng.js';
import { buildLogitsProcessors, minP, repetitionPenalty, softmax, temperature, topK, topP } from './logits-processors.js';
import { argmax, sampleFromLogits } from './sampler.js';

const logits = () => Float32Array.from([2, 1, 0, -1, 3]);
// softmax of [2,1,0,-1,3]: ≈ [0.2341, 0.0861, 0.0317, 0.0117, 0.6364]

describe('logits processors on hand-made logits', () => {
  it('temperature divides the logits', () => {
    const l = logits();
    temperature(2)(l, []);
    expect(Array.from(l)).toEqual([1, 0.5, 0, -0.5, 1.5]);
  });

  it('top-k keeps the k largest', () => {
    const l = logits();
    topK(2)(l, []);
    expect(Array.from(l)).toEqual([2, -Infinity, -Infinity, -Infinity, 3]);
  });

  it('top-p keeps the smallest set reaching p', () => {
    const a = logits();
    topP(0.8)(a, []); // 0.636 < 0.8, 0.636 + 0.234 = 0.870 ≥ 0.8 → keep ids 4 and 0
    expect(Array.from(a)).toEqual([2, -Infinity, -Infinity, -Infinity, 3]);
    const b = logits();
    topP(0.5)(b, []); // the top token alone reaches 0.5
    expect(Array.from(b)).toEqual([-Infinity, -Infinity, -Infinity, -Infinity, 3]);
    const c = logits();
    topP(0.9)(c, []); // 0.870 < 0.9 → a third token (id 1)
    expect(Array.from(c).filter((v) => v > -Infinity)).toHaveLength(3);
  });

  it('min-p drops tokens below minP × max probability', () => {
    const l = logits();
    minP(0.1)(l, []); // threshold 0.0636: keeps 0.234, 0.0861, 0.636
    expect(Array.from(l)).toEqual([2, 1, -Infinity, -Infinity, 3]);
  });

  it('repetition penalty divides positive and multiplies negative logits of seen tokens', () => {
    const l = logits();
    repetitionPenalty(2)(l, [0, 3, 3]);
    expect(Array.from(l)).toEqual([1, 1, 0, -2, 3]);
  });

  it('greedy configs run no warpers; sampling configs run them in order', () => {
    expect(buildLogitsProcessors({ temperature: 0, topK: 2, topP: 0.5, minP: 0.1, repetitionPenalty: 1 })).toHaveLength(0);
    expect(buildLogitsProcessors({ temperature: 0.5, topK: 2, topP: 0.5, minP: 0.1, repetitionPenalty: 1.2 })).toHaveLength(5);
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

  it('never draws a removed token', () => {
    const rng = createRng(3);
    for (let i = 0; i < 2000; i++) {
      const l = logits();
      topK(2)(l, []);
      expect([0, 4]).toContain(sampleFromLogits(l, rng));
    }
  });
});
