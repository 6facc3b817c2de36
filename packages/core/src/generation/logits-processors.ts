/**
 * Logits processors: each takes one row of logits (`[vocabSize]`, modified in place) and the tokens of the sequence
 * so far. Removed tokens get `-Infinity`. They run in the order of {@link buildLogitsProcessors}: repetition penalty,
 * temperature, top-k, top-p, min-p (the order of Hugging Face transformers).
 *
 * @example
 * ```ts
 * const processors = buildLogitsProcessors({ temperature: 0.7, topK: 40, topP: 1, minP: 0, repetitionPenalty: 1.1 });
 * for (const p of processors) p(row, history);
 * ```
 */
export type LogitsProcessor = (logits: Float32Array, history: readonly number[]) => void;

/** CTRL's repetition penalty: a token already seen has its logit divided by `penalty` if positive, multiplied if not. */
export function repetitionPenalty(penalty: number): LogitsProcessor {
  return (logits, history) => {
    const seen = new Set(history);
    for (const t of seen) {
      const v = logits[t]!;
      logits[t] = v > 0 ? v / penalty : v * penalty;
    }
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

/** Nucleus: keep the most likely tokens until their probability reaches p (at least one token). */
export function topP(p: number): LogitsProcessor {
  return (logits) => {
    if (p >= 1) return;
    const probs = softmax(logits);
    const order = Array.from(probs.keys()).sort((a, b) => probs[b]! - probs[a]!);
    let cumulative = 0;
    let keep = 0;
    while (keep < order.length) {
      cumulative += probs[order[keep]!]!;
      keep++;
      if (cumulative >= p) break;
    }
    for (let i = keep; i < order.length; i++) logits[order[i]!] = -Infinity;
  };
}

/** Drop tokens whose probability is below minP × the highest probability. */
export function minP(m: number): LogitsProcessor {
  return (logits) => {
    if (m <= 0) return;
    const probs = softmax(logits);
    let max = 0;
    for (const v of probs) if (v > max) max = v;
    for (let i = 0; i < logits.length; i++) if (probs[i]! < m * max) logits[i] = -Infinity;
  };
}

export interface ProcessorOptions {
  readonly temperature: number;
  readonly topK: number;
  readonly topP: number;
  readonly minP: number;
  readonly repetitionPenalty: number;
}

/** The processors a config asks for, in application order. Warpers (temperature, top-k/p, min-p) only when sampling. */
export function buildLogitsProcessors(o: ProcessorOptions): LogitsProcessor[] {
  const list: LogitsProcessor[] = [];
  if (o.repetitionPenalty !== 1) list.push(repetitionPenalty(o.repetitionPenalty));
  if (o.temperature > 0) {
    if (o.temperature !== 1) list.push(temperature(o.temperature));
    if (o.topK > 0) list.push(topK(o.topK));
    if (o.topP < 1) list.push(topP(o.topP));
    if (o.minP > 0) list.push(minP(o.minP));
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
