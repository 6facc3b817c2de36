/**
 * Logits processors: each takes one row of next-token logits (`[vocabSize]`, modified in place) and what the
 * sequence holds so far. A removed token gets `-Infinity`. {@link buildLogitsProcessors} lists them in the order
 * Hugging Face transformers applies them (its `generation/logits_process.py` semantics): repetition penalty,
 * no-repeat n-grams, bad words, minimum lengths, forced BOS/EOS, suppressed tokens, then the user's own processors,
 * then temperature and top-k. Top-p and min-p work on the step's shared softmax (`distribution.ts`).
 *
 * @example
 * ```ts
 * const banVowels: LogitsProcessor = (logits) => { for (const t of vowelIds) logits[t] = -Infinity; };
 * await generate(model, { prompt, tokenizer, logitsProcessors: [banVowels] });
 * ```
 */
export type LogitsProcessor = (logits: Float32Array, context: ProcessorContext) => void;

/** What a processor may read about the sequence whose logits it processes. */
export interface ProcessorContext {
  /**
   * The sequence so far: the prompt (decoder-only) or the decoder's start token and forced prefix (encoder-decoder),
   * then the generated tokens.
   */
  readonly history: readonly number[];
  /** Where the generated tokens start in `history`. */
  readonly promptLength: number;
  /** 0-based index of the token being chosen (`history.length − promptLength`). */
  readonly step: number;
}

/**
 * CTRL's repetition penalty over every token of the sequence (prompt included): a seen token's logit is divided by
 * `penalty` if positive, multiplied if not. O(history) per call, no allocation after the first.
 */
export function repetitionPenalty(penalty: number): LogitsProcessor {
  let seen = new Uint8Array(0);
  return (logits, { history }) => {
    if (seen.length < logits.length) seen = new Uint8Array(logits.length);
    for (const t of history) {
      if (seen[t]) continue;
      seen[t] = 1;
      const v = logits[t]!;
      logits[t] = v > 0 ? v / penalty : v * penalty;
    }
    for (const t of history) seen[t] = 0;
  };
}

/** Bans every token that would repeat an n-gram of size `n` already in the sequence (prompt included). */
export function noRepeatNgram(n: number): LogitsProcessor {
  return (logits, { history }) => {
    const len = history.length;
    if (len + 1 < n) return;
    // the n − 1 last tokens; every earlier occurrence of them bans the token that followed
    const tail = len - (n - 1);
    for (let i = 0; i + n - 1 < len; i++) {
      let match = true;
      for (let k = 0; k < n - 1 && match; k++) match = history[i + k] === history[tail + k];
      if (match) logits[history[i + n - 1]!] = -Infinity;
    }
  };
}

/** Bans bad words: a one-token entry always, a longer entry's last token when the sequence ends with the rest. */
export function noBadWords(words: readonly (readonly number[])[]): LogitsProcessor {
  const single = words.filter((w) => w.length === 1).map((w) => w[0]!);
  const multi = words.filter((w) => w.length > 1);
  return (logits, { history }) => {
    for (const t of single) logits[t] = -Infinity;
    for (const w of multi) {
      const k = w.length - 1;
      if (history.length < k) continue;
      let match = true;
      for (let i = 0; i < k && match; i++) match = history[history.length - k + i] === w[i];
      if (match) logits[w[k]!] = -Infinity;
    }
  };
}

/** Bans the end-of-sequence tokens while the sequence (prompt included) is shorter than `min` (HF `min_length`). */
export function minLength(min: number, eos: readonly number[]): LogitsProcessor {
  return (logits, { history }) => {
    if (history.length < min) for (const t of eos) logits[t] = -Infinity;
  };
}

/** Bans the end-of-sequence tokens while fewer than `min` tokens were generated (HF `min_new_tokens`). */
export function minNewTokens(min: number, eos: readonly number[]): LogitsProcessor {
  return (logits, { step }) => {
    if (step < min) for (const t of eos) logits[t] = -Infinity;
  };
}

/** Leaves only `token` possible. */
function force(logits: Float32Array, token: number): void {
  logits.fill(-Infinity);
  logits[token] = 0;
}

/** Forces `token` at the first position after the start token (the sequence holds one token; HF `forced_bos_token_id`). */
export function forcedBos(token: number): LogitsProcessor {
  return (logits, { history }) => {
    if (history.length === 1) force(logits, token);
  };
}

/** Forces `token` as the last of `maxNewTokens` tokens (HF `forced_eos_token_id` at `max_length − 1`). */
export function forcedEos(token: number, maxNewTokens: number): LogitsProcessor {
  return (logits, { step }) => {
    if (step === maxNewTokens - 1) force(logits, token);
  };
}

/** Bans `tokens` at every step (HF `suppress_tokens`). */
export function suppressTokens(tokens: readonly number[]): LogitsProcessor {
  return (logits) => {
    for (const t of tokens) logits[t] = -Infinity;
  };
}

/** Bans `tokens` as the first generated token (HF `begin_suppress_tokens`). */
export function beginSuppressTokens(tokens: readonly number[]): LogitsProcessor {
  return (logits, { step }) => {
    if (step === 0) for (const t of tokens) logits[t] = -Infinity;
  };
}

export function temperature(t: number): LogitsProcessor {
  return (logits) => {
    for (let i = 0; i < logits.length; i++) logits[i] = logits[i]! / t;
  };
}

/** Keep the k highest logits (ties with the k-th are kept). */
export function topK(k: number): LogitsProcessor {
  return (logits) => {
    if (k >= logits.length) return;
    const sorted = Float32Array.from(logits).sort();
    const threshold = sorted[sorted.length - k]!;
    for (let i = 0; i < logits.length; i++) if (logits[i]! < threshold) logits[i] = -Infinity;
  };
}

/** What {@link buildLogitsProcessors} reads from a generation config. */
export interface ProcessorOptions {
  readonly temperature: number;
  readonly topK: number;
  readonly repetitionPenalty: number;
  readonly noRepeatNgramSize?: number;
  readonly badWordsIds?: readonly (readonly number[])[];
  readonly minLength?: number;
  readonly minNewTokens?: number;
  readonly forcedBosTokenId?: number | null;
  readonly forcedEosTokenId?: number | null;
  readonly maxNewTokens?: number;
  readonly suppressTokens?: readonly number[];
  readonly beginSuppressTokens?: readonly number[];
  readonly stopTokenIds?: readonly number[];
  readonly logitsProcessors?: readonly LogitsProcessor[];
}

/**
 * The processors a config asks for, in application order (Hugging Face's). Temperature and top-k only when sampling
 * (`temperature > 0`); top-p and min-p follow on the step's softmax ({@link buildWarpers}).
 *
 * @example
 * ```ts
 * const processors = buildLogitsProcessors({ temperature: 0.7, topK: 40, repetitionPenalty: 1.1 });
 * for (const p of processors) p(row, { history, promptLength, step });
 * ```
 */
export function buildLogitsProcessors(o: ProcessorOptions): LogitsProcessor[] {
  const list: LogitsProcessor[] = [];
  const eos = o.stopTokenIds ?? [];
  if (o.repetitionPenalty !== 1) list.push(repetitionPenalty(o.repetitionPenalty));
  if ((o.noRepeatNgramSize ?? 0) > 0) list.push(noRepeatNgram(o.noRepeatNgramSize!));
  if ((o.badWordsIds ?? []).length > 0) list.push(noBadWords(o.badWordsIds!));
  if ((o.minLength ?? 0) > 0 && eos.length > 0) list.push(minLength(o.minLength!, eos));
  if ((o.minNewTokens ?? 0) > 0 && eos.length > 0) list.push(minNewTokens(o.minNewTokens!, eos));
  if (o.forcedBosTokenId != null) list.push(forcedBos(o.forcedBosTokenId));
  if (o.forcedEosTokenId != null && o.maxNewTokens !== undefined) list.push(forcedEos(o.forcedEosTokenId, o.maxNewTokens));
  if ((o.suppressTokens ?? []).length > 0) list.push(suppressTokens(o.suppressTokens!));
  if ((o.beginSuppressTokens ?? []).length > 0) list.push(beginSuppressTokens(o.beginSuppressTokens!));
  list.push(...(o.logitsProcessors ?? []));
  if (o.temperature > 0) {
    if (o.temperature !== 1) list.push(temperature(o.temperature));
    if (o.topK > 0) list.push(topK(o.topK));
  }
  return list;
}

/** A numerically stable softmax into a new array. */
export function softmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  const out = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    const e = Math.exp(logits[i]! - max);
    out[i] = e;
    sum += e;
  }
  for (let i = 0; i < out.length; i++) out[i] = out[i]! / sum;
  return out;
}

/** log(softmax(logits)) into a new array. */
export function logSoftmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);
  const lse = max + Math.log(sum);
  const out = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i]! - lse;
  return out;
}
