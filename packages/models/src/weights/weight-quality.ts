import { generate, type DecoderOnlyModel, type GenerateRequest } from '@kvt/core';

/** How far a model's logits stray from a reference's, teacher-forced on the reference's greedy tokens. */
export interface LogitsAgreement {
  /** Median over steps of ‖candidate − reference‖₂ / ‖reference‖₂ of a step's logits. */
  readonly medianRelativeError: number;
  /** The largest such step error. */
  readonly maxRelativeError: number;
  /** Steps where both pick the same greedy token, as a share. */
  readonly top1Agreement: number;
  readonly steps: number;
}

/**
 * Feeds both models the prompt, then `steps` tokens the reference picks greedily (the same input for both), and
 * compares their logits at every step: the quality of a quantized model against its float32 original.
 *
 * @example
 * ```ts
 * const { medianRelativeError } = await logitsAgreement(fp32Model, q8Model, [1, 5, 9], 32);
 * ```
 */
export async function logitsAgreement(reference: DecoderOnlyModel, candidate: DecoderOnlyModel, prompt: readonly number[], steps: number): Promise<LogitsAgreement> {
  const caches = [reference, candidate].map((m) => m.createCache({ batchSize: 1, capacityHint: prompt.length + steps }));
  const errors: number[] = [];
  let agree = 0;
  try {
    let input: number[][] = [[...prompt]];
    for (let s = 0; s < steps; s++) {
      const [r, c] = [await reference.forward(input, caches[0]!), await candidate.forward(input, caches[1]!)];
      let diff = 0;
      let norm = 0;
      let best = 0;
      for (let i = 0; i < r.data.length; i++) {
        diff += (c.data[i]! - r.data[i]!) ** 2;
        norm += r.data[i]! ** 2;
        if (r.data[i]! > r.data[best]!) best = i;
      }
      errors.push(Math.sqrt(diff / norm));
      if (argmax(c.data) === best) agree++;
      input = [[best]];
    }
  } finally {
    caches.forEach((c) => c.dispose());
  }
  const sorted = [...errors].sort((a, b) => a - b);
  return { medianRelativeError: sorted[Math.floor(sorted.length / 2)]!, maxRelativeError: sorted[sorted.length - 1]!, top1Agreement: agree / steps, steps };
}

function argmax(v: Float32Array): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i]! > v[best]!) best = i;
  return best;
}

/**
 * How many tokens two models' greedy continuations of each prompt share before they first differ (of `length`);
 * `bOptions` are more settings for b's requests (a model against itself with another `kvDtype`).
 *
 * @example
 * ```ts
 * const shared = await greedyCommonPrefix(fp32Model, q8Model, [[1, 403, 407]], 200); // e.g. [200]
 * const int8 = await greedyCommonPrefix(model, model, [[1, 403, 407]], 200, { kvDtype: 'int8' });
 * ```
 */
export async function greedyCommonPrefix(
  a: DecoderOnlyModel,
  b: DecoderOnlyModel,
  prompts: readonly (readonly number[])[],
  length: number,
  bOptions: Partial<GenerateRequest> = {},
): Promise<number[]> {
  const out: number[] = [];
  for (const prompt of prompts) {
    const request = { inputIds: [...prompt], maxNewTokens: length, stopTokenIds: [] };
    const [x, y] = [(await generate(a, request)).sequences[0]!.tokens, (await generate(b, { ...request, ...bOptions })).sequences[0]!.tokens];
    let n = 0;
    while (n < length && x[n] === y[n]) n++;
    out.push(n);
  }
  return out;
}
