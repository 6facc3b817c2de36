/**
 * Corpus BLEU as sacreBLEU computes it by default: 13a tokenization, n-grams up to 4, every reference (clipped counts
 * take the max over references; the reference length closest to the hypothesis, shorter on ties), brevity penalty,
 * no smoothing. chrF as sacreBLEU's default: character 6-grams without spaces, β = 2, the best reference per
 * sentence. Written here: no maintained JavaScript port of sacreBLEU exists (docs/decisions/0003-own-parsers.md).
 *
 * @example
 * ```ts
 * corpusBleu(['the cat sat'], [['the cat sat', 'a cat sat']]); // 100
 * ```
 */
export function tokenize13a(line: string): string {
  let s = line.replace(/<skipped>/g, '').replace(/-\n/g, '').replace(/\n/g, ' ');
  if (s.includes('&')) s = s.replace(/&quot;/g, '"').replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>');
  s = ` ${s} `;
  s = s.replace(/([{-~[-` -&(-+:-@/])/g, ' $1 ');
  s = s.replace(/([^0-9])([.,])/g, '$1 $2 ');
  s = s.replace(/([.,])([^0-9])/g, ' $1 $2');
  s = s.replace(/([0-9])(-)/g, '$1 $2 ');
  return s.split(/\s+/).filter(Boolean).join(' ');
}

function ngrams(tokens: readonly string[], n: number): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    const g = tokens.slice(i, i + n).join('\u0001');
    m.set(g, (m.get(g) ?? 0) + 1);
  }
  return m;
}

export interface BleuResult {
  readonly score: number;
  readonly precisions: number[];
  readonly brevityPenalty: number;
  readonly hypothesisLength: number;
  readonly referenceLength: number;
}

export function corpusBleu(hypotheses: readonly string[], references: readonly (readonly string[])[]): BleuResult {
  const match = [0, 0, 0, 0];
  const total = [0, 0, 0, 0];
  let hypLen = 0;
  let refLen = 0;
  hypotheses.forEach((h, i) => {
    const ht = tokenize13a(h).split(' ').filter(Boolean);
    const rts = references[i]!.map((r) => tokenize13a(r).split(' ').filter(Boolean));
    hypLen += ht.length;
    let best = rts[0]!.length;
    for (const r of rts) {
      const d = Math.abs(r.length - ht.length);
      const bd = Math.abs(best - ht.length);
      if (d < bd || (d === bd && r.length < best)) best = r.length;
    }
    refLen += best;
    for (let n = 1; n <= 4; n++) {
      const hc = ngrams(ht, n);
      const max = new Map<string, number>();
      for (const r of rts) for (const [g, c] of ngrams(r, n)) max.set(g, Math.max(max.get(g) ?? 0, c));
      for (const [g, c] of hc) match[n - 1]! += Math.min(c, max.get(g) ?? 0);
      total[n - 1]! += Math.max(ht.length - n + 1, 0);
    }
  });
  const precisions = match.map((m, i) => (total[i]! > 0 ? (100 * m) / total[i]! : 0));
  const bp = hypLen > refLen ? 1 : hypLen === 0 ? 0 : Math.exp(1 - refLen / hypLen);
  const score = match.some((m) => m === 0) ? 0 : 100 * bp * Math.exp(match.reduce((s, m, i) => s + Math.log(m / total[i]!), 0) / 4);
  return { score, precisions, brevityPenalty: bp, hypothesisLength: hypLen, referenceLength: refLen };
}

function charStats(hyp: string, ref: string, order = 6) {
  const h = hyp.replace(/\s+/g, '');
  const r = ref.replace(/\s+/g, '');
  const stats: [number, number, number][] = [];
  for (let n = 1; n <= order; n++) {
    const hc = ngrams([...h], n);
    const rc = ngrams([...r], n);
    let m = 0;
    for (const [g, c] of hc) m += Math.min(c, rc.get(g) ?? 0);
    stats.push([Math.max(h.length - n + 1, 0), Math.max(r.length - n + 1, 0), m]);
  }
  return stats;
}

function fScore(stats: [number, number, number][], beta = 2): number {
  let p = 0;
  let r = 0;
  let k = 0;
  for (const [hc, rc, m] of stats) {
    if (hc > 0 && rc > 0) {
      p += m / hc;
      r += m / rc;
      k++;
    }
  }
  if (k === 0) return 0;
  p /= k;
  r /= k;
  return p + r > 0 ? ((1 + beta * beta) * p * r) / (beta * beta * p + r) : 0;
}

export function corpusChrf(hypotheses: readonly string[], references: readonly (readonly string[])[]): number {
  const sum: [number, number, number][] = Array.from({ length: 6 }, () => [0, 0, 0]);
  hypotheses.forEach((h, i) => {
    let best = charStats(h, references[i]![0]!);
    for (const r of references[i]!.slice(1)) {
      const s = charStats(h, r);
      if (fScore(s) > fScore(best)) best = s;
    }
    best.forEach((s, n) => s.forEach((x, j) => (sum[n]![j]! += x)));
  });
  return 100 * fScore(sum);
}
