import { InvalidOptionError, NumericalError } from '../errors.js';
import type { Logits } from '../contracts/model.js';
import type { StreamDecoder } from '../contracts/tokenizer.js';
import type { GenerationConfig } from './config.js';
import { TokenDistribution, buildWarpers, type DistributionWarper } from './distribution.js';
import type { GenerationEvent, TokenLogprob } from './events.js';
import { buildLogitsProcessors, logSoftmax, type LogitsProcessor } from './logits-processors.js';
import { rowLogits, type DecodingStrategy, type StepPlan } from './pipeline.js';
import { createRng } from './rng.js';
import { argmaxFinite, chooseSampler, firstNonFinite, type Sampler } from './sampler.js';
import { SequenceText } from './sequence-text.js';
import type { FinishReason } from './stopping-criteria.js';

/** One row of a sampling/greedy run: which input and sample it is, and what it holds before the first new token. */
export interface RowSpec {
  readonly sequence: number;
  readonly sample: number;
  /** The prompt (decoder-only) or decoder start + prefix (encoder-decoder): what processors see before new tokens. */
  readonly history: readonly number[];
  /** A stream decoder for this row's text, when there is a tokenizer. */
  readonly decoder?: StreamDecoder | undefined;
}

/** One finished row. */
export interface SequenceOutput {
  readonly sequence: number;
  readonly sample: number;
  /** Generated ids (prompt excluded; a final stop token included). */
  readonly tokens: number[];
  /** The streamed text, joined (cut before a stop string), when there is a tokenizer. */
  readonly text?: string;
  readonly finishReason: FinishReason;
  /** sum(log p) of the chosen tokens under the distribution they were chosen from (after the processors). */
  readonly logProbability: number;
  /** With `logprobs`/`topLogprobs`: each token's log-probability under the model's own distribution. */
  readonly logprobs?: number[];
  readonly topLogprobs?: TokenLogprob[][];
}

export interface SamplingStrategyOptions {
  readonly config: GenerationConfig;
  readonly rows: readonly RowSpec[];
  /** Fed to rows that are done (their output is ignored). */
  readonly padToken: number;
  /** When generation started (for `maxTimeMs` and the criteria's `elapsedMs`). */
  readonly startedAt: number;
  /** Track each row's sum(log p) (alternatives, samples). */
  readonly scores?: boolean;
  /** Overrides the first token of a row (CTranslate2's alternatives: row k takes the k-th most likely token). */
  readonly firstToken?: (row: number, distribution: TokenDistribution) => number;
}

interface RowState {
  readonly spec: RowSpec;
  readonly history: number[];
  readonly tokens: number[];
  readonly text: SequenceText | undefined;
  finishReason: FinishReason | undefined;
  logProbability: number;
  readonly logprobs: number[];
  readonly topLogprobs: TokenLogprob[][];
}

/**
 * Greedy decoding or sampling, each row on its own: logits processors, the shared softmax with its warpers, the
 * sampler, then the stopping criteria of that row; the row's text is decoded incrementally.
 */
export class SamplingStrategy implements DecodingStrategy {
  private readonly config: GenerationConfig;
  private readonly processors: LogitsProcessor[];
  private readonly warpers: DistributionWarper[];
  private readonly sampler: Sampler;
  private readonly stop: Set<number>;
  private readonly state: RowState[];
  /** Plain greedy (no processor, warper, score or first-token rule): each row's argmax, read in place. */
  private readonly plainGreedy: boolean;

  constructor(private readonly o: SamplingStrategyOptions) {
    this.config = o.config;
    this.processors = buildLogitsProcessors(o.config);
    this.warpers = buildWarpers(o.config);
    this.plainGreedy =
      !o.config.sampling && this.processors.length === 0 && this.warpers.length === 0 && !o.scores && !o.firstToken &&
      !o.config.logprobs && o.config.topLogprobs === 0;
    this.sampler = chooseSampler(o.config.sampling, createRng(o.config.seed));
    this.stop = new Set(o.config.stopTokenIds);
    this.state = o.rows.map((spec) => ({
      spec,
      history: [...spec.history],
      tokens: [],
      text: spec.decoder ? new SequenceText(spec.decoder, o.config.stopStrings) : undefined,
      finishReason: undefined,
      logProbability: 0,
      logprobs: [],
      topLogprobs: [],
    }));
  }

  choose(logits: Logits, step: number): StepPlan {
    const { config } = this;
    const events: GenerationEvent[] = [];
    const next: number[] = [];
    const elapsedMs = performance.now() - this.o.startedAt;
    this.state.forEach((row, r) => {
      if (row.finishReason) {
        next.push(this.o.padToken);
        return;
      }
      const { token, modelLogprobs } = this.plainGreedy
        ? { token: this.greedyToken(logits, r, step), modelLogprobs: undefined }
        : this.processedToken(logits, r, row, step);
      row.tokens.push(token);
      row.history.push(token);
      let logprob: number | undefined;
      let top: TokenLogprob[] | undefined;
      if (modelLogprobs) {
        logprob = modelLogprobs[token]!;
        row.logprobs.push(logprob);
        if (config.topLogprobs > 0) row.topLogprobs.push((top = topOf(modelLogprobs, config.topLogprobs)));
      }

      const put = row.text?.put(token);
      let text = put?.piece ?? '';
      let finishReason: FinishReason | undefined;
      if (this.stop.has(token)) finishReason = 'stop-token';
      else if (put?.stopped) finishReason = 'stop-string';
      else if (step === config.maxNewTokens - 1) finishReason = 'length';
      else if (config.maxTimeMs !== null && elapsedMs >= config.maxTimeMs) finishReason = 'time';
      else if (config.stoppingCriteria.length > 0) {
        const seen = { sequence: row.spec.sequence, sample: row.spec.sample, tokens: row.tokens, text: row.text?.text ?? '', elapsedMs };
        if (config.stoppingCriteria.some((c) => c(seen))) finishReason = 'criterion';
      }
      if (finishReason) {
        row.finishReason = finishReason;
        text += row.text?.end() ?? '';
      }
      next.push(token);
      events.push({
        kind: 'token',
        sequence: row.spec.sequence,
        sample: row.spec.sample,
        token,
        text,
        step,
        ...(finishReason ? { finishReason } : {}),
        ...(logprob !== undefined ? { logprob } : {}),
        ...(top ? { topLogprobs: top } : {}),
      });
    });
    return { events, next, done: this.state.every((s) => s.finishReason !== undefined) };
  }

  /** Row r's argmax, read in place from the step's logits (a NaN or infinity is a NumericalError). */
  private greedyToken(logits: Logits, r: number, step: number): number {
    const start = (r * logits.positions + logits.positions - 1) * logits.vocabSize;
    const row = logits.data.subarray(start, start + logits.vocabSize);
    const token = argmaxFinite(row);
    if (token < 0) throw new NumericalError(step, r, row[firstNonFinite(row)]!);
    return token;
  }

  /**
   * Row r's token through the whole pipeline on a copy of its logits: the model's log-probabilities (when reported),
   * the processors, the warpers, then the sampler (or the first-token rule).
   */
  private processedToken(logits: Logits, r: number, row: RowState, step: number): { token: number; modelLogprobs: Float64Array | undefined } {
    const { config } = this;
    const scores = rowLogits(logits, r);
    const bad = firstNonFinite(scores);
    if (bad >= 0) throw new NumericalError(step, r, scores[bad]!);
    const modelLogprobs = config.logprobs || config.topLogprobs > 0 ? logSoftmax(scores) : undefined;
    const context = { history: row.history, promptLength: row.spec.history.length, step };
    for (const p of this.processors) p(scores, context);
    const distribution = new TokenDistribution(scores);
    for (const w of this.warpers) w(distribution);
    const token = step === 0 && this.o.firstToken ? this.o.firstToken(r, distribution) : this.sampler(distribution);
    if (scores[token] === -Infinity)
      throw new InvalidOptionError('logitsProcessors', config.logitsProcessors, `processors that leave some token possible (every token was removed at step ${step})`);
    if (this.o.scores) row.logProbability += distribution.logProbability(token);
    return { token, modelLogprobs };
  }

  /** Every row's output; rows not finished (an abort) are marked 'aborted'. */
  outputs(): SequenceOutput[] {
    return this.state.map((row) => ({
      sequence: row.spec.sequence,
      sample: row.spec.sample,
      tokens: [...row.tokens],
      ...(row.text ? { text: row.text.text } : {}),
      finishReason: row.finishReason ?? 'aborted',
      logProbability: row.logProbability,
      ...(this.config.logprobs || this.config.topLogprobs > 0 ? { logprobs: [...row.logprobs] } : {}),
      ...(this.config.topLogprobs > 0 ? { topLogprobs: [...row.topLogprobs] } : {}),
    }));
  }
}

/** The k most likely tokens of a log-probability row, most likely first (ties: lower id first). */
function topOf(logprobs: Float64Array, k: number): TokenLogprob[] {
  const best: TokenLogprob[] = [];
  for (let t = 0; t < logprobs.length; t++) {
    const lp = logprobs[t]!;
    if (best.length === k && lp <= best[k - 1]!.logprob) continue;
    let i = best.length < k ? best.length : k - 1;
    if (best.length < k) best.push({ token: t, logprob: lp });
    while (i > 0 && best[i - 1]!.logprob < lp) {
      best[i] = best[i - 1]!;
      i--;
    }
    best[i] = { token: t, logprob: lp };
  }
  return best;
}
