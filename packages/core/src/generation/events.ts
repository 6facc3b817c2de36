import type { FinishReason } from './stopping-criteria.js';

/** A token and its log-probability under the model's distribution (before any processor). */
export interface TokenLogprob {
  readonly token: number;
  readonly logprob: number;
}

/** One generated token, as streamed (greedy decoding and sampling). */
export interface TokenEvent {
  readonly kind: 'token';
  /** Which input (prompt or source sentence) this token belongs to. */
  readonly sequence: number;
  /** Which sample of that input (with `numReturnSequences` > 1 and sampling; else 0). */
  readonly sample: number;
  readonly token: number;
  /**
   * New text to show: empty while a character is incomplete or while the text could be the start of a stop string
   * (it comes with a later token), and without a tokenizer. Joined, the texts of a sequence are its final text.
   */
  readonly text: string;
  /** 0-based index of the generated token. */
  readonly step: number;
  /** Set on a sequence's last token. */
  readonly finishReason?: FinishReason;
  /** With `logprobs` or `topLogprobs`: this token's log-probability. */
  readonly logprob?: number;
  /** With `topLogprobs: k`: the k most likely tokens of this step, most likely first. */
  readonly topLogprobs?: readonly TokenLogprob[];
}

/**
 * Beam search's current best hypothesis of an input, streamed whenever it changes (the best finished hypothesis or
 * the best running beam, whichever scores higher), and once more with `final: true` when the input is done.
 */
export interface BeamEvent {
  readonly kind: 'beam';
  /** Which input (prompt or source sentence). */
  readonly sequence: number;
  /** The hypothesis's generated tokens (a final stop token included). */
  readonly tokens: readonly number[];
  /** Its whole text (not a delta), with a tokenizer. */
  readonly text?: string;
  /** sum(log p) / length^lengthPenalty. */
  readonly score: number;
  /** True once this input's search has ended: this is its result. */
  readonly final: boolean;
}

/** What `generateStream` and `translateStream` yield. */
export type GenerationEvent = TokenEvent | BeamEvent;
