import type { Logits } from '../contracts/model.js';
import type { Tokenizer } from '../contracts/tokenizer.js';
import type { GenerationConfig } from './config.js';
import { buildLogitsProcessors, logSoftmax } from './logits-processors.js';
import { createRng } from './rng.js';
import { argmax, sampleFromLogits } from './sampler.js';
import type { DecodingSession } from './session.js';
import { yieldToEventLoop } from './yield.js';

/** Why a sequence ended. */
export type FinishReason = 'stop-token' | 'stop-string' | 'length';

/** One generated token, as streamed. */
export interface TokenEvent {
  /** Which input (prompt or source sentence) this token belongs to. */
  readonly sequence: number;
  readonly token: number;
  /** New text this token completes (empty while a character is incomplete, or without a tokenizer). */
  readonly text: string;
  /** 0-based index of the generated token. */
  readonly step: number;
}

/** One finished sequence of the sampling/greedy loop. */
export interface SequenceOutput {
  /** Generated ids (prompt excluded; a final stop token included). */
  readonly tokens: number[];
  readonly finishReason: FinishReason;
  /** Length of `text` to keep when a stop string was hit. */
  readonly stopStringIndex?: number;
  /** sum(log p) of the chosen tokens (after the logits processors), when `LoopContext.scores` is set. */
  readonly logProbability?: number;
}

/** A hypothesis of beam search. */
export interface Hypothesis {
  /** Generated ids (a final stop token included). */
  readonly tokens: number[];
  /** sum(log p) / length^lengthPenalty. */
  readonly score: number;
  /** sum(log p) of the generated tokens. */
  readonly logProbability: number;
}

export interface StepTiming {
  /** ms spent in each model call, the first being the prefill. */
  readonly stepMs: number[];
}

function rowLogits(logits: Logits, row: number): Float32Array {
  const stride = logits.positions * logits.vocabSize;
  const start = row * stride + (logits.positions - 1) * logits.vocabSize;
  return logits.data.slice(start, start + logits.vocabSize);
}

export interface LoopContext {
  readonly config: GenerationConfig;
  /** Tokens per row that the repetition penalty counts (prompt, and later the generated tokens). */
  readonly histories: number[][];
  readonly tokenizer?: Tokenizer | undefined;
  /** Filler fed to a row that has finished (its output is ignored). */
  readonly padToken: number;
  readonly signal?: AbortSignal | undefined;
  readonly timing: StepTiming;
  /** Called before each model call; throws to abort. */
  readonly checkAbort: () => void;
  /** Track sum(log p) of the chosen tokens. */
  readonly scores?: boolean;
}

/**
 * Greedy decoding or sampling for every row of a session, yielding tokens as they come. `firstLogits` are the
 * logits that predict the first new token (from the prefill). Returns each row's output.
 */
export async function* sampleLoop(
  session: DecodingSession,
  firstLogits: Logits,
  ctx: LoopContext,
): AsyncGenerator<TokenEvent, SequenceOutput[]> {
  const { config } = ctx;
  const rows = ctx.histories.length;
  const processors = buildLogitsProcessors(config);
  const rng = createRng(config.seed);
  const stop = new Set(config.stopTokenIds);
  const outputs: { tokens: number[]; finishReason?: FinishReason; stopStringIndex?: number; lp: number }[] = Array.from(
    { length: rows },
    () => ({ tokens: [], lp: 0 }),
  );
  const decoders = ctx.tokenizer ? outputs.map(() => ctx.tokenizer!.createStreamDecoder()) : undefined;
  let logits = firstLogits;
  for (let step = 0; step < config.maxNewTokens; step++) {
    const next: number[] = [];
    for (let r = 0; r < rows; r++) {
      const out = outputs[r]!;
      if (out.finishReason) {
        next.push(ctx.padToken);
        continue;
      }
      const row = rowLogits(logits, r);
      for (const p of processors) p(row, ctx.histories[r]!);
      const token = config.sampling ? sampleFromLogits(row, rng) : argmax(row);
      if (ctx.scores) out.lp += logSoftmax(row)[token]!;
      next.push(token);
      out.tokens.push(token);
      ctx.histories[r]!.push(token);
      const text = decoders ? decoders[r]!.push(token) : '';
      if (stop.has(token)) out.finishReason = 'stop-token';
      else if (config.stopStrings.length > 0 && ctx.tokenizer) {
        const full = ctx.tokenizer.decode(out.tokens);
        for (const s of config.stopStrings) {
          const at = full.indexOf(s);
          if (at >= 0) {
            out.finishReason = 'stop-string';
            out.stopStringIndex = at;
            break;
          }
        }
      }
      yield { sequence: r, token, text, step };
    }
    if (outputs.every((o) => o.finishReason)) break;
    if (step === config.maxNewTokens - 1) break;
    await yieldToEventLoop(); // timers, clicks and aborts run between steps
    ctx.checkAbort();
    const t0 = performance.now();
    logits = await session.step(next.map((t) => [t]));
    ctx.timing.stepMs.push(performance.now() - t0);
  }
  return outputs.map((o) => ({
    tokens: o.tokens,
    finishReason: o.finishReason ?? 'length',
    ...(o.stopStringIndex !== undefined ? { stopStringIndex: o.stopStringIndex } : {}),
    ...(ctx.scores ? { logProbability: o.lp } : {}),
  }));
}

interface Beam {
  tokens: number[];
  logProbability: number;
}

/**
 * Beam search over `groups` inputs with `numBeams` rows each. The session must already hold `groups × numBeams`
 * rows, each group's rows identical; `firstLogits` hold their next-token logits. Beams move by reordering the cache,
 * never by recomputing a prefix.
 * Returns each group's hypotheses, best first (`numReturnSequences` of them).
 */
export async function beamSearch(
  session: DecodingSession,
  firstLogits: Logits,
  groups: number,
  ctx: LoopContext,
): Promise<Hypothesis[][]> {
  const { config } = ctx;
  const N = config.numBeams;
  const V = session.vocabSize;
  const stop = new Set(config.stopTokenIds);
  const processors = buildLogitsProcessors({ ...config, temperature: 0 });
  const beams: Beam[][] = Array.from({ length: groups }, () =>
    Array.from({ length: N }, (_, b) => ({ tokens: [], logProbability: b === 0 ? 0 : -Infinity })),
  );
  const hyps: Hypothesis[][] = Array.from({ length: groups }, () => []);
  const done = new Array<boolean>(groups).fill(false);
  const norm = (lp: number, len: number): number => lp / Math.pow(Math.max(len, 1), config.lengthPenalty);
  const addHyp = (g: number, tokens: number[], lp: number): void => {
    const list = hyps[g]!;
    const score = norm(lp, tokens.length);
    if (list.length < N || score > list[list.length - 1]!.score) {
      list.push({ tokens, score, logProbability: lp });
      list.sort((a, b) => b.score - a.score);
      if (list.length > N) list.pop();
    }
  };
  let logits = firstLogits;
  for (let step = 0; step < config.maxNewTokens; step++) {
    const reorder: number[] = [];
    const next: number[] = [];
    for (let g = 0; g < groups; g++) {
      if (done[g]) {
        for (let b = 0; b < N; b++) {
          reorder.push(g * N + b);
          next.push(ctx.padToken);
        }
        continue;
      }
      // Top 2N candidates (beam, token) of this group by total log probability.
      const cand: { beam: number; token: number; lp: number }[] = [];
      const keep = 2 * N;
      for (let b = 0; b < N; b++) {
        const beam = beams[g]![b]!;
        if (beam.logProbability === -Infinity) continue;
        const row = rowLogits(logits, g * N + b);
        for (const p of processors) p(row, [...ctx.histories[g]!, ...beam.tokens]);
        const lps = logSoftmax(row);
        for (let t = 0; t < V; t++) {
          const lp = beam.logProbability + lps[t]!;
          if (lp === -Infinity) continue;
          if (cand.length < keep || lp > cand[cand.length - 1]!.lp) {
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
        }
      }
      const nextBeams: Beam[] = [];
      for (let rank = 0; rank < cand.length && nextBeams.length < N; rank++) {
        const c = cand[rank]!;
        const tokens = [...beams[g]![c.beam]!.tokens, c.token];
        if (stop.has(c.token)) {
          if (rank < N) addHyp(g, tokens, c.lp);
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
        next.push(ctx.padToken);
      }
      beams[g] = nextBeams;
      done[g] = groupDone(hyps[g]!, nextBeams[0]!.logProbability, step + 1, N, config, norm);
    }
    if (done.every(Boolean) || step === config.maxNewTokens - 1) break;
    await yieldToEventLoop(); // timers, clicks and aborts run between steps
    ctx.checkAbort();
    session.reorder(reorder);
    const t0 = performance.now();
    logits = await session.step(next.map((t) => [t]));
    ctx.timing.stepMs.push(performance.now() - t0);
  }
  for (let g = 0; g < groups; g++) {
    if (done[g]) continue;
    for (const beam of beams[g]!) if (beam.logProbability > -Infinity) addHyp(g, beam.tokens, beam.logProbability);
  }
  return hyps.map((list) => list.slice(0, config.numReturnSequences));
}

function groupDone(
  hyps: readonly Hypothesis[],
  bestRunning: number,
  length: number,
  N: number,
  config: GenerationConfig,
  norm: (lp: number, len: number) => number,
): boolean {
  if (hyps.length < N) return false;
  if (bestRunning === -Infinity) return true;
  const worst = hyps[hyps.length - 1]!.score;
  if (config.earlyStopping === true) return true;
  if (config.earlyStopping === false) return worst >= norm(bestRunning, length);
  // 'never': the best score any running beam could still reach
  const reach = config.lengthPenalty > 0 ? norm(bestRunning, config.maxNewTokens) : norm(bestRunning, length);
  return worst >= reach;
}

/**
 * Decode speed from a result's per-step timings: steps per second (0 with no decode step).
 *
 * @example
 * ```ts
 * const result = await generate(model, request);
 * console.log(`${tokensPerSecond(result.timing.decodeMs).toFixed(1)} tokens/s`);
 * ```
 */
export function tokensPerSecond(decodeMs: readonly number[]): number {
  const total = decodeMs.reduce((a, b) => a + b, 0);
  return decodeMs.length > 0 && total > 0 ? (1000 * decodeMs.length) / total : 0;
}
