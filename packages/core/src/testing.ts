/**
 * Test doubles for code that drives models: a tiny pure-JS decoder-only model with a cache that records its calls.
 * Its logits depend on the whole prefix, so a loop that feeds the wrong tokens or mis-reorders the cache gives
 * different outputs.
 *
 * @example
 * ```ts
 * import { createToyDecoderModel } from '@kvt/core/testing';
 * const model = createToyDecoderModel({ vocabSize: 8, seed: 1 });
 * const result = await generate(model, { inputIds: [1, 2], maxNewTokens: 5 });
 * ```
 */
import type { Cache } from './contracts/cache.js';
import type { DecoderOnlyModel, Logits, ModelConfig } from './contracts/model.js';
import { CacheStateError, DisposedError } from './errors.js';
import { createRng } from './generation/rng.js';
import { logSoftmax } from './generation/logits-processors.js';

export interface ToyModelOptions {
  vocabSize: number;
  seed: number;
  maxPositions?: number;
  eos?: number;
}

export interface ToyDecoderModel extends DecoderOnlyModel {
  /** Tokens fed to the model per call (prefill first). */
  readonly calls: number[][][];
  /** Next-token logits for a full sequence, computed from scratch. */
  logitsFor(sequence: readonly number[]): Float32Array;
}

class ToyCache implements Cache {
  disposed = false;
  constructor(
    public rows: number[][],
    readonly maxLength: number,
  ) {}
  readonly numLayers = 1;
  get batchSize() {
    return this.rows.length;
  }
  get length() {
    return this.rows[0]?.length ?? 0;
  }
  get capacity() {
    return this.length;
  }
  get bytes() {
    return this.length * this.rows.length * 4;
  }
  reorder(indices: readonly number[]) {
    for (const i of indices) if (i < 0 || i >= this.rows.length) throw new CacheStateError(`reorder index ${i} out of range`);
    this.rows = indices.map((i) => [...this.rows[i]!]);
  }
  truncate(length: number) {
    this.rows = this.rows.map((r) => r.slice(0, length));
  }
  fork() {
    return new ToyCache(this.rows.map((r) => [...r]), this.maxLength);
  }
  dispose() {
    this.disposed = true;
  }
}

export function createToyDecoderModel(options: ToyModelOptions): ToyDecoderModel {
  const V = options.vocabSize;
  const rng = createRng(options.seed);
  const table = Array.from({ length: V * V }, () => rng.next() * 4 - 2);
  const mix = Array.from({ length: 13 * V }, () => rng.next() * 2 - 1);
  const config: ModelConfig = {
    architecture: 'toy',
    numLayers: 1,
    numHeads: 1,
    numKvHeads: 1,
    headDim: 1,
    vocabSize: V,
    maxPositions: options.maxPositions ?? 256,
    specialTokens: { eos: options.eos === undefined ? [] : [options.eos], bos: 0 },
  };
  const logitsFor = (seq: readonly number[]): Float32Array => {
    const last = seq[seq.length - 1]!;
    let h = 0;
    for (const t of seq) h = (h * 31 + t + 7) % 13;
    const out = new Float32Array(V);
    for (let t = 0; t < V; t++) out[t] = table[last * V + t]! + mix[h * V + t]!;
    return out;
  };
  const calls: number[][][] = [];
  return {
    kind: 'decoder-only',
    config,
    calls,
    logitsFor,
    createCache: ({ batchSize }) => new ToyCache(Array.from({ length: batchSize }, () => []), config.maxPositions),
    async forward(tokenIds, cache, opts): Promise<Logits> {
      calls.push(tokenIds.map((r) => [...r]));
      let rows: number[][];
      if (cache) {
        const c = cache as ToyCache;
        if (c.disposed) throw new DisposedError('cache');
        c.rows = c.rows.map((r, i) => [...r, ...tokenIds[i]!]);
        rows = c.rows;
      } else rows = tokenIds.map((r) => [...r]);
      const all = opts?.logits === 'all';
      const positions = all ? tokenIds[0]!.length : 1;
      const data = new Float32Array(rows.length * positions * V);
      rows.forEach((row, b) => {
        for (let p = 0; p < positions; p++) {
          const upto = row.length - positions + p + 1;
          data.set(logitsFor(row.slice(0, upto)), (b * positions + p) * V);
        }
      });
      return { data, batch: rows.length, positions, vocabSize: V };
    },
    dispose() {},
  };
}

/**
 * Beam search by recomputing every candidate sequence from scratch: an independent reference for tests of the cached
 * beam search. Same rules: 2N candidates per step, a stop token among the first N ends a hypothesis, scores are
 * sum(log p) / length^lengthPenalty, a group stops when its worst finished score beats the best running beam.
 */
export async function bruteForceBeamSearch(
  nextLogits: (sequences: number[][]) => Promise<Float32Array[]>,
  numBeams: number,
  maxNewTokens: number,
  stopTokens: readonly number[],
  lengthPenalty = 1,
): Promise<{ tokens: number[]; score: number }[]> {
  const N = numBeams;
  let beams = [{ tokens: [] as number[], lp: 0 }];
  const hyps: { tokens: number[]; score: number }[] = [];
  const norm = (lp: number, n: number) => lp / Math.pow(n, lengthPenalty);
  for (let step = 0; step < maxNewTokens; step++) {
    const rows = await nextLogits(beams.map((b) => b.tokens));
    const cands: { tokens: number[]; lp: number; order: number }[] = [];
    beams.forEach((b, bi) => {
      logSoftmax(rows[bi]!).forEach((v, t) => cands.push({ tokens: [...b.tokens, t], lp: b.lp + v, order: bi * 1e7 + t }));
    });
    cands.sort((a, b) => b.lp - a.lp || a.order - b.order);
    const next: typeof beams = [];
    for (let rank = 0; rank < 2 * N && next.length < N; rank++) {
      const c = cands[rank]!;
      if (stopTokens.includes(c.tokens[c.tokens.length - 1]!)) {
        if (rank < N) hyps.push({ tokens: c.tokens, score: norm(c.lp, c.tokens.length) });
      } else next.push({ tokens: c.tokens, lp: c.lp });
    }
    beams = next;
    hyps.sort((a, b) => b.score - a.score);
    hyps.splice(N);
    if (hyps.length >= N && hyps[N - 1]!.score >= norm(beams[0]!.lp, step + 1)) return hyps;
  }
  for (const b of beams) hyps.push({ tokens: b.tokens, score: norm(b.lp, b.tokens.length) });
  hyps.sort((a, b) => b.score - a.score);
  return hyps.slice(0, N);
}
