/**
 * Stopping criteria answer per sequence, after each of its tokens: the loop ends a sequence at its first stop token,
 * its first stop string (`sequence-text.ts`), `maxNewTokens`, `maxTimeMs`, or when one of the user's criteria says so.
 *
 * @example
 * ```ts
 * const endOfSentence: StoppingCriterion = ({ text }) => /[.!?]\s*$/.test(text);
 * await generate(model, { prompt, tokenizer, stoppingCriteria: [endOfSentence] });
 * ```
 */
export type StoppingCriterion = (sequence: SequenceState) => boolean;

/** What a stopping criterion sees of a sequence. */
export interface SequenceState {
  /** Which input (prompt or source sentence). */
  readonly sequence: number;
  /** Which sample of that input (with `numReturnSequences` > 1 and sampling; else 0). */
  readonly sample: number;
  /** The generated tokens so far (prompt excluded). */
  readonly tokens: readonly number[];
  /** Their text as streamed so far ('' without a tokenizer). */
  readonly text: string;
  /** ms since generation started. */
  readonly elapsedMs: number;
}


/** Why a sequence ended ('aborted': in the partial result of an abort). */
export type FinishReason = 'stop-token' | 'stop-string' | 'length' | 'time' | 'criterion' | 'aborted';
