import { describe, expect, it } from 'vitest';
import { corpusBleu, corpusChrf, tokenize13a } from './bleu.js';

describe('BLEU and chrF (sacreBLEU-compatible)', () => {
  it('tokenizes like 13a', () => {
    expect(tokenize13a('Hello, world! It costs $3.50.')).toBe('Hello , world ! It costs $ 3.50 .');
    expect(tokenize13a('¿Dónde está la estación?')).toBe('¿Dónde está la estación ?');
  });

  it('is 100 for an exact match, 0 with no 4-gram match, and uses the closest reference length', () => {
    expect(corpusBleu(['the cat sat on the mat'], [['the cat sat on the mat']]).score).toBeCloseTo(100, 6);
    expect(corpusBleu(['a b c'], [['d e f g']]).score).toBe(0);
    // hand-computed: hyp "the cat is on the mat" vs ref "the cat sat on the mat": p1 5/6, p2 3/5, p3 1/4, p4 0/3 → 0
    expect(corpusBleu(['the cat is on the mat'], [['the cat sat on the mat']]).score).toBe(0);
    // multiple references: the best clipped counts over references
    const r = corpusBleu(['the cat sat on the mat today'], [['the cat sat on the mat', 'the cat sat on the mat today']]);
    expect(r.score).toBeCloseTo(100, 6);
  });

  it('matches a hand computation with a brevity penalty', () => {
    // hyp 5 tokens, ref 6: all n-grams of the hyp match → precisions 100, BP = exp(1 − 6/5)
    const r = corpusBleu(['the cat sat on the'], [['the cat sat on the mat']]);
    expect(r.brevityPenalty).toBeCloseTo(Math.exp(1 - 6 / 5), 10);
    expect(r.score).toBeCloseTo(100 * Math.exp(1 - 6 / 5), 6);
  });

  it('chrF is 100 for a match and below for a near miss', () => {
    expect(corpusChrf(['hola mundo'], [['hola mundo']])).toBeCloseTo(100, 6);
    const c = corpusChrf(['hola mundos'], [['hola mundo']]);
    expect(c).toBeGreaterThan(80);
    expect(c).toBeLessThan(100);
  });
});
