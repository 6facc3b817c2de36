import { NumericalError } from '../errors.js';
import type { Logits } from '../contracts/model.js';
import type { GenerationConfig } from './config.js';
import type { BeamEvent } from './events.js';
import { buildLogitsProcessors, logSoftmax, type LogitsProcessor } from './logits-processors.js';
import { rowLogits, type DecodingStrategy, type StepPlan } from './pipeline.js';
import { firstNonFinite } from './sampler.js';
import type { FinishReason } from './stopping-criteria.js';

/** A hypothesis of beam search. */
export interface Hypothesis {
  /** Generated ids (a final stop token included). */
  readonly tokens: number[];
  /** sum(log p) / length^lengthPenalty. */
  readonly score: number;
  /** sum(log p) of the generated tokens. */
  readonly logProbability: number;
}

interface Beam {
  readonly tokens: number[];
  readonly logProbability: number;
}

export interface BeamSearchOptions {
  readonly config: GenerationConfig;
  /** What each group (input) holds before the first new token: the prompt, or decoder start + prefix. */
  readonly histories: readonly (readonly number[])[];
  readonly padToken: number;
  /** A hypothesis's text for the streamed events, when there is a tokenizer. */
  readonly textOf?: ((group: number, tokens: readonly number[]) => string) | undefined;
}

/**
 * Beam search over groups (inputs) of `numBeams` rows each; the rows of a group start identical (one prefill, fanned
 * out). Beams move by reordering the cache, never by recomputing a prefix. Each row's log-softmax is computed once
 * per step, after the logits processors. The current best hypothesis of each group is streamed as it changes.
 */
export class BeamSearchStrategy implements DecodingStrategy {
  private readonly config: GenerationConfig;
  private readonly N: number;
  private readonly processors: LogitsProcessor[];
  private readonly stop: Set<number>;
  private readonly beams: Beam[][];
  private readonly hyps: Hypothesis[][];
  private readonly done: boolean[];
  /** The tokens last streamed as each group's best (to stream only changes), and whether its final event went out. */
  private readonly lastBest: (readonly number[] | null)[];
  private readonly finalSent: boolean[];

  constructor(private readonly o: BeamSearchOptions) {
    this.config = o.config;
    this.N = o.config.numBeams;
    this.processors = buildLogitsProcessors({ ...o.config, temperature: 0 });
    this.stop = new Set(o.config.stopTokenIds);
    const groups = o.histories.length;
    this.beams = Array.from({ length: groups }, () =>
      Array.from({ length: this.N }, (_, b) => ({ tokens: [], logProbability: b === 0 ? 0 : -Infinity })),
    );
    this.hyps = Array.from({ length: groups }, () => []);
    this.done = new Array<boolean>(groups).fill(false);
    this.lastBest = new Array<readonly number[] | null>(groups).fill(null);
    this.finalSent = new Array<boolean>(groups).fill(false);
  }

  private norm(lp: number, len: number): number {
    return lp / Math.pow(Math.max(len, 1), this.config.lengthPenalty);
  }

  private addHypothesis(g: number, tokens: number[], lp: number): void {
    const list = this.hyps[g]!;
    const score = this.norm(lp, tokens.length);
    if (list.length < this.N || score > list[list.length - 1]!.score) {
      list.push({ tokens, score, logProbability: lp });
      list.sort((a, b) => b.score - a.score);
      if (list.length > this.N) list.pop();
    }
  }

  choose(logits: Logits, step: number): StepPlan {
    const { N, config } = this;
    const V = logits.vocabSize;
    const reorder: number[] = [];
    const next: number[] = [];
    const events: BeamEvent[] = [];
    this.beams.forEach((groupBeams, g) => {
      if (this.done[g]) {
        for (let b = 0; b < N; b++) reorder.push(g * N + b), next.push(this.o.padToken);
        return;
      }
      // top 2N candidates (beam, token) of this group by total log probability
      const cand: { beam: number; token: number; lp: number }[] = [];
      const keep = 2 * N;
      groupBeams.forEach((beam, b) => {
        if (beam.logProbability === -Infinity) return;
        const row = rowLogits(logits, g * N + b);
        const bad = firstNonFinite(row);
        if (bad >= 0) throw new NumericalError(step, g * N + b, row[bad]!);
        const history = [...this.o.histories[g]!, ...beam.tokens];
        const context = { history, promptLength: this.o.histories[g]!.length, step };
        for (const p of this.processors) p(row, context);
        const lps = logSoftmax(row);
        for (let t = 0; t < V; t++) {
          const lp = beam.logProbability + lps[t]!;
          if (lp === -Infinity || (cand.length === keep && lp <= cand[keep - 1]!.lp)) continue;
          // insertion into `cand`, sorted descending; on ties the earlier (beam, token) stays first
          const item = { beam: b, token: t, lp };
          if (cand.length === keep) cand.pop();
          let i = cand.length;
          cand.push(item);
          while (i > 0 && cand[i - 1]!.lp < lp) {
            cand[i] = cand[i - 1]!;
            i--;
          }
          cand[i] = item;
        }
      });
      const nextBeams: Beam[] = [];
      for (let rank = 0; rank < cand.length && nextBeams.length < N; rank++) {
        const c = cand[rank]!;
        const tokens = [...groupBeams[c.beam]!.tokens, c.token];
        if (this.stop.has(c.token)) {
          if (rank < N) this.addHypothesis(g, tokens, c.lp);
        } else {
          nextBeams.push({ tokens, logProbability: c.lp });
          reorder.push(g * N + c.beam);
          next.push(c.token);
        }
      }
      while (nextBeams.length < N) {
        // fewer live candidates than beams (tiny vocabularies): pad with dead beams
        nextBeams.push({ tokens: [], logProbability: -Infinity });
        reorder.push(g * N);
        next.push(this.o.padToken);
      }
      this.beams[g] = nextBeams;
      this.done[g] = this.groupDone(g, nextBeams[0]!.logProbability, step + 1);
    });
    const last = step === config.maxNewTokens - 1;
    const done = last || this.done.every(Boolean);
    this.beams.forEach((_, g) => {
      if (done && !this.done[g]) this.finishGroup(g);
      const event = this.bestEvent(g, done || this.done[g]!);
      if (event) events.push(event);
    });
    return { events, next, reorder, done };
  }

  /** A group that runs out of steps: its live beams become hypotheses. */
  private finishGroup(g: number): void {
    for (const beam of this.beams[g]!) if (beam.logProbability > -Infinity) this.addHypothesis(g, beam.tokens, beam.logProbability);
    this.done[g] = true;
  }

  /** The group's best hypothesis (finished or running) when it changed since last streamed, or when final. */
  private bestEvent(g: number, final: boolean): BeamEvent | null {
    if (this.finalSent[g]) return null;
    const finished = this.hyps[g]![0];
    const running = final ? undefined : this.beams[g]![0];
    const runningScore = running && running.logProbability > -Infinity ? this.norm(running.logProbability, running.tokens.length) : -Infinity;
    const best = finished && finished.score >= runningScore ? finished : running && runningScore > -Infinity ? { tokens: running.tokens, score: runningScore } : finished;
    if (!best) return null;
    const prev = this.lastBest[g];
    const changed = !prev || prev.length !== best.tokens.length || prev.some((t, i) => t !== best.tokens[i]);
    if (!changed && !final) return null;
    this.lastBest[g] = best.tokens;
    this.finalSent[g] = final;
    const text = this.o.textOf?.(g, best.tokens);
    return { kind: 'beam', sequence: g, tokens: [...best.tokens], ...(text !== undefined ? { text } : {}), score: best.score, final };
  }

  private groupDone(g: number, bestRunning: number, length: number): boolean {
    const hyps = this.hyps[g]!;
    const { config, N } = this;
    if (hyps.length < N) return false;
    if (bestRunning === -Infinity) return true;
    const worst = hyps[hyps.length - 1]!.score;
    if (config.earlyStopping === true) return true;
    if (config.earlyStopping === false) return worst >= this.norm(bestRunning, length);
    // 'never': the best score any running beam could still reach
    const reach = config.lengthPenalty > 0 ? this.norm(bestRunning, config.maxNewTokens) : this.norm(bestRunning, length);
    return worst >= reach;
  }

  /** Why group `g`'s hypothesis `tokens` ended: a stop token, the length limit, or an abort (search not done). */
  finishReason(g: number, tokens: readonly number[]): FinishReason {
    if (tokens.length > 0 && this.stop.has(tokens[tokens.length - 1]!)) return 'stop-token';
    return this.done[g] ? 'length' : 'aborted';
  }

  /** Each group's hypotheses, best first (`numReturnSequences` of them); the running beams of unfinished groups (an abort) count. */
  results(): Hypothesis[][] {
    return this.hyps.map((list, g) => {
      if (this.done[g]) return list.slice(0, this.config.numReturnSequences);
      const all = [...list, ...this.beams[g]!.filter((b) => b.logProbability > -Infinity).map((b) => ({ ...b, score: this.norm(b.logProbability, b.tokens.length) }))];
      return all.sort((a, b) => b.score - a.score).slice(0, this.config.numReturnSequences);
    });
  }
}
