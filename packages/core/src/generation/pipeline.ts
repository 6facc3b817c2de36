/**
 * The decoding pipeline every generation runs, read top to bottom:
 *
 *   prepare inputs (adapters: `generate`, `translate`) → forward (the session: model + cache) → last-position logits
 *   → logits processors → a sampler chosen from the config (greedy, sampling: `sampling-strategy.ts`; beams:
 *   `beam-search.ts`) → stopping criteria per sequence → streamed events → cache update (reorder, next step).
 *
 * Between steps the loop gives the event loop a turn, so an abort from a timer or a click, and painting, happen
 * within one step on every backend.
 */
import type { Logits } from '../contracts/model.js';
import type { GenerationEvent } from './events.js';
import type { DecodingSession } from './session.js';
import { yieldToEventLoop } from './yield.js';

/** What a strategy decided at one step. */
export interface StepPlan {
  /** Streamed to the caller, in order. */
  readonly events: readonly GenerationEvent[];
  /** One token per row, fed at the next step (a filler for rows that are done). */
  readonly next: readonly number[];
  /** Rows to keep, duplicate or permute before the next step (beam search): row i becomes row `reorder[i]`. */
  readonly reorder?: readonly number[];
  /** Nothing more to generate. */
  readonly done: boolean;
}

/** Chooses every row's next token from a step's logits. */
export interface DecodingStrategy {
  /** `logits`: `[rows, 1, vocab]` of the step that predicts token `step` (0 = from the prefill). */
  choose(logits: Logits, step: number): StepPlan;
}

export interface LoopControl {
  /** ms of each model call (the loop appends its decode steps). */
  readonly stepMs: number[];
  /** Throws to abort; asked after every streamed event and before every model call. */
  readonly checkAbort: () => void;
}

/**
 * Runs `strategy` from the prefill's logits until it is done, streaming its events. The session's cache is
 * updated by each step (and reordered where the strategy says).
 */
export async function* decodeLoop(
  session: DecodingSession,
  firstLogits: Logits,
  strategy: DecodingStrategy,
  control: LoopControl,
): AsyncGenerator<GenerationEvent, void> {
  let logits = firstLogits;
  for (let step = 0; ; step++) {
    const plan = strategy.choose(logits, step);
    for (const event of plan.events) {
      yield event;
      control.checkAbort();
    }
    if (plan.done) return;
    await yieldToEventLoop(); // timers, clicks, aborts and painting run between steps
    control.checkAbort();
    if (plan.reorder) session.reorder(plan.reorder);
    const t0 = performance.now();
    logits = await session.step(plan.next.map((t) => [t]));
    control.stepMs.push(performance.now() - t0);
  }
}

/** Row `row`'s last-position logits, as a copy the processors may change. */
export function rowLogits(logits: Logits, row: number): Float32Array {
  const stride = logits.positions * logits.vocabSize;
  const start = row * stride + (logits.positions - 1) * logits.vocabSize;
  return logits.data.slice(start, start + logits.vocabSize);
}

/**
 * Fans every row out `times` times (beams, parallel samples) after one shared prefill: the cache rows are
 * duplicated by a reorder (no second prefill), and so are the logits, row-major: [r0, r0, …, r1, r1, …].
 */
export function fanOut(session: DecodingSession, logits: Logits, times: number): Logits {
  if (times === 1) return logits;
  session.reorder(Array.from({ length: logits.batch * times }, (_, i) => Math.floor(i / times)));
  const stride = logits.positions * logits.vocabSize;
  const data = new Float32Array(logits.batch * times * stride);
  for (let r = 0; r < logits.batch; r++)
    for (let k = 0; k < times; k++) data.set(logits.data.subarray(r * stride, (r + 1) * stride), (r * times + k) * stride);
  return { data, batch: logits.batch * times, positions: logits.positions, vocabSize: logits.vocabSize };
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
