import { describe, expect, it } from 'vitest';
import { bruteForceBeamSearch, createToyDecoderModel } from '../testing.js';
import { AbortedError, InvalidInputError, InvalidOptionError, NumericalError, PromptTooLongError, TokenOutOfRangeError } from '../errors.js';
import type { BeamEvent } from './events.js';
import { logSoftmax, type LogitsProcessor } from './logits-processors.js';
import { generate, generateStream } from './generate.js';
import { argmax } from './sampler.js';

describe('generate (toy model)', () => {
  it('greedy follows argmax of the full-sequence logits', async () => {
    const model = createToyDecoderModel({ vocabSize: 11, seed: 1 });
    const result = await generate(model, { inputIds: [1, 2, 3], maxNewTokens: 10 });
    const seq = [1, 2, 3];
    for (let i = 0; i < 10; i++) seq.push(argmax(model.logitsFor(seq)));
    expect(result.sequences[0]!.tokens).toEqual(seq.slice(3));
    // prefill once, then one token per step
    expect(model.calls[0]).toEqual([[1, 2, 3]]);
    expect(model.calls.slice(1).every((c) => c.length === 1 && c[0]!.length === 1)).toBe(true);
  });

  it('stops at a stop token and reports why', async () => {
    const model = createToyDecoderModel({ vocabSize: 11, seed: 1 });
    const free = await generate(model, { inputIds: [1, 2, 3], maxNewTokens: 10 });
    const stopAt = free.sequences[0]!.tokens[4]!;
    const result = await generate(model, { inputIds: [1, 2, 3], maxNewTokens: 10, stopTokenIds: [stopAt] });
    const first = free.sequences[0]!.tokens.indexOf(stopAt);
    expect(result.sequences[0]!.tokens).toEqual(free.sequences[0]!.tokens.slice(0, first + 1));
    expect(result.sequences[0]!.finishReason).toBe('stop-token');
  });

  it('sampling with a seed is reproducible, and a different seed differs', async () => {
    const model = createToyDecoderModel({ vocabSize: 50, seed: 2 });
    const run = (seed: number) => generate(model, { inputIds: [1], maxNewTokens: 40, temperature: 1.5, seed });
    const a = await run(5);
    expect((await run(5)).sequences[0]!.tokens).toEqual(a.sequences[0]!.tokens);
    expect((await run(6)).sequences[0]!.tokens).not.toEqual(a.sequences[0]!.tokens);
    expect(a.seed).toBe(5);
  });

  it('streams the same tokens it returns, as an async iterable and as a callback', async () => {
    const model = createToyDecoderModel({ vocabSize: 11, seed: 1 });
    const streamed: number[] = [];
    const gen = generateStream(model, { inputIds: [[1, 2], [3]], maxNewTokens: 6 });
    let result;
    for (;;) {
      const n = await gen.next();
      if (n.done) {
        result = n.value;
        break;
      }
      if (n.value.kind === "token" && n.value.sequence === 1) streamed.push(n.value.token);
    }
    expect(streamed).toEqual(result.sequences[1]!.tokens);
    const cb: number[] = [];
    await generate(model, { inputIds: [[1, 2], [3]], maxNewTokens: 6, onToken: (e) => e.sequence === 1 && cb.push(e.token) });
    expect(cb).toEqual(streamed);
  });

  it('aborts within one step with the partial output, and releases the cache', async () => {
    const model = createToyDecoderModel({ vocabSize: 11, seed: 1 });
    const controller = new AbortController();
    let seen = 0;
    const err = await generate(model, {
      inputIds: [1, 2],
      maxNewTokens: 50,
      signal: controller.signal,
      onToken: () => {
        if (++seen === 3) controller.abort();
      },
    }).catch((e: unknown) => e);
    expect(AbortedError.isInstance(err)).toBe(true);
    const partial = (err as AbortedError<{ sequences: { tokens: number[] }[] }>).partial;
    expect(partial.sequences[0]!.tokens).toHaveLength(3);
    expect(model.calls.length).toBe(3); // prefill + 2 steps: nothing after the abort
  });

  // A model whose every call holds the thread for 2 ms, as a real CPU/WASM forward does: without a turn of the event
  // loop between steps, a timer's abort would fire only after all 200 tokens.
  const blocking = (model: ReturnType<typeof createToyDecoderModel>): typeof model => ({
    ...model,
    async forward(...args: Parameters<typeof model.forward>) {
      const t0 = performance.now();
      while (performance.now() - t0 < 2);
      return model.forward(...args);
    },
  });
  for (const [what, extra] of [['greedy', {}], ['beam search', { numBeams: 3 }]] as const) {
    it(`an abort from a timer takes effect within a step or two (${what}); AbortSignal.timeout too`, async () => {
      for (const signal of ['controller', 'timeout'] as const) {
        const model = blocking(createToyDecoderModel({ vocabSize: 11, seed: 1, maxPositions: 512 }));
        const controller = new AbortController();
        const abortAt = performance.now() + 20;
        if (signal === 'controller') setTimeout(() => controller.abort(), 20);
        let lateSteps = 0;
        const err = await generate(model, {
          inputIds: [1, 2],
          maxNewTokens: 200,
          stopTokenIds: [],
          signal: signal === 'controller' ? controller.signal : AbortSignal.timeout(20),
          ...extra,
          onToken: () => void (performance.now() > abortAt && lateSteps++),
        }).catch((e: unknown) => e);
        expect(AbortedError.isInstance(err), signal).toBe(true);
        expect(model.calls.length, signal).toBeLessThan(60); // ≈ 20 ms / 2 ms per call, not 201
        expect(lateSteps, `${signal}: tokens after the abort was due`).toBeLessThanOrEqual(2 * ('numBeams' in extra ? 3 : 1) + 2);
      }
    });
  }

  it('validates options and inputs with typed errors', async () => {
    const model = createToyDecoderModel({ vocabSize: 11, seed: 1, maxPositions: 32 });
    const bad = async (req: object) => generate(model, { inputIds: [1], ...req }).catch((e: unknown) => e);
    expect(InvalidOptionError.isInstance(await bad({ topP: 0 }))).toBe(true);
    expect(InvalidOptionError.isInstance(await bad({ topP: 1.5 }))).toBe(true);
    expect(InvalidOptionError.isInstance(await bad({ temperature: -1 }))).toBe(true);
    expect(InvalidOptionError.isInstance(await bad({ numBeams: 0 }))).toBe(true);
    expect(InvalidOptionError.isInstance(await bad({ maxNewTokens: 33 }))).toBe(true);
    expect(InvalidOptionError.isInstance(await bad({ numBeams: 2, numReturnSequences: 3 }))).toBe(true);
    expect(InvalidOptionError.isInstance(await bad({ stopStrings: ['x'] }))).toBe(true);
    expect(TokenOutOfRangeError.isInstance(await bad({ inputIds: [1, 11] }))).toBe(true);
    expect(InvalidInputError.isInstance(await bad({ inputIds: [[]] }))).toBe(true);
    const tooLong = await bad({ inputIds: Array(30).fill(1), maxNewTokens: 5 });
    expect(PromptTooLongError.isInstance(tooLong)).toBe(true);
    expect((tooLong as Error).message).toMatch(/lower maxNewTokens to at most 3/);
  });
});

describe('beam search (toy model)', () => {
  it('matches a brute-force uncached search, n-best and scores', async () => {
    for (const seed of [1, 2, 3, 4]) {
      const model = createToyDecoderModel({ vocabSize: 6, seed, eos: 5 });
      const result = await generate(model, {
        inputIds: [1, 2],
        maxNewTokens: 12,
        numBeams: 4,
        numReturnSequences: 4,
        lengthPenalty: 1,
      });
      const expected = await bruteForceBeamSearch(async (seqs) => seqs.map((s) => model.logitsFor([1, 2, ...s])), 4, 12, [5]);
      const got = result.sequences[0]!.hypotheses!;
      expect(got.map((h) => h.tokens)).toEqual(expected.map((h) => h.tokens));
      got.forEach((h, i) => expect(h.score).toBeCloseTo(expected[i]!.score, 5));
      // one prefill, then one single-token step per row: no prefix was recomputed
      expect(model.calls[0]).toEqual([[1, 2]]);
      expect(model.calls.slice(1).every((c) => c.every((r) => r.length === 1))).toBe(true);
    }
  });
});

describe('an already aborted signal', () => {
  it('rejects with AbortedError before any model call', async () => {
    const model = createToyDecoderModel({ vocabSize: 11, seed: 1 });
    const controller = new AbortController();
    controller.abort();
    const err = await generate(model, { inputIds: [1, 2], signal: controller.signal }).catch((e: unknown) => e);
    expect(AbortedError.isInstance(err)).toBe(true);
    expect(model.calls).toHaveLength(0);
  });
});

describe('the pipeline\'s extension points (toy model)', () => {
  it('logprobs: each chosen token\'s log-probability under the model, and the top k per step', async () => {
    const model = createToyDecoderModel({ vocabSize: 11, seed: 3 });
    const r = await generate(model, { inputIds: [1, 2], maxNewTokens: 6, logprobs: true, topLogprobs: 3 });
    const seq = r.sequences[0]!;
    const history = [1, 2];
    seq.tokens.forEach((t, k) => {
      const lps = logSoftmax(model.logitsFor(history));
      expect(seq.logprobs![k]).toBeCloseTo(lps[t]!, 10);
      const top = [...lps.keys()].sort((a, b) => lps[b]! - lps[a]! || a - b).slice(0, 3);
      expect(seq.topLogprobs![k]!.map((x) => x.token)).toEqual(top);
      expect(seq.topLogprobs![k]![0]!.token).toBe(t); // greedy chose the most likely
      history.push(t);
    });
    const streamed: number[] = [];
    await generate(model, { inputIds: [1, 2], maxNewTokens: 6, logprobs: true, onToken: (e) => void streamed.push(e.logprob!) });
    expect(streamed).toEqual(seq.logprobs);
  });

  it('a custom logits processor sees the history and changes the choice; a custom criterion ends a sequence', async () => {
    const model = createToyDecoderModel({ vocabSize: 11, seed: 1 });
    const free = await generate(model, { inputIds: [1, 2], maxNewTokens: 8 });
    const banned = free.sequences[0]!.tokens[0]!;
    const seen: number[][] = [];
    const ban: LogitsProcessor = (logits, { history, step, promptLength }) => {
      seen.push([step, history.length - promptLength]);
      logits[banned] = -Infinity;
    };
    const r = await generate(model, {
      inputIds: [1, 2], maxNewTokens: 8, logitsProcessors: [ban],
      stoppingCriteria: [({ tokens }) => tokens.length === 5],
    });
    expect(r.sequences[0]!.tokens).not.toContain(banned);
    expect(r.sequences[0]!.tokens).toHaveLength(5);
    expect(r.sequences[0]!.finishReason).toBe('criterion');
    expect(seen.every(([step, generated]) => step === generated)).toBe(true);
    const bad = await generate(model, { inputIds: [1], logitsProcessors: [5 as never] }).catch((e: unknown) => e);
    expect(InvalidOptionError.isInstance(bad)).toBe(true);
  });

  it('numReturnSequences with sampling: independent samples of one prompt that share one prefill', async () => {
    const model = createToyDecoderModel({ vocabSize: 30, seed: 2 });
    const r = await generate(model, { inputIds: [[1, 2], [3]], maxNewTokens: 10, temperature: 1.2, seed: 4, numReturnSequences: 3 });
    expect(model.calls[0]).toEqual([[1, 2], [3]]); // one prefill row per prompt
    expect(model.calls[1]).toHaveLength(6); // then 2 prompts × 3 samples
    for (const s of r.sequences) {
      expect(s.hypotheses).toHaveLength(3);
      expect(s.tokens).toEqual(s.hypotheses![0]!.tokens);
      expect(new Set(s.hypotheses!.map((h) => h.tokens.join())).size).toBeGreaterThan(1);
    }
    const greedy = await generate(model, { inputIds: [1], numReturnSequences: 2 }).catch((e: unknown) => e);
    expect(InvalidOptionError.isInstance(greedy)).toBe(true);
  });

  it('beam search streams its best hypothesis as it changes; the final event is the result', async () => {
    const model = createToyDecoderModel({ vocabSize: 6, seed: 2, eos: 5 });
    const events: BeamEvent[] = [];
    const stream = generateStream(model, { inputIds: [[1, 2], [3]], maxNewTokens: 10, numBeams: 3 });
    let result;
    for (;;) {
      const n = await stream.next();
      if (n.done) {
        result = n.value;
        break;
      }
      expect(n.value.kind).toBe('beam');
      events.push(n.value as BeamEvent);
    }
    for (const g of [0, 1]) {
      const mine = events.filter((e) => e.sequence === g);
      expect(mine.filter((e) => e.final)).toHaveLength(1);
      const last = mine[mine.length - 1]!;
      expect(last.final).toBe(true);
      expect(last.tokens).toEqual(result.sequences[g]!.tokens);
      expect(last.score).toBeCloseTo(result.sequences[g]!.hypotheses![0]!.score, 10);
      // streamed only when the best changed
      for (let k = 1; k < mine.length - 1; k++) expect(mine[k]!.tokens).not.toEqual(mine[k - 1]!.tokens);
    }
  });

  it('maxTimeMs ends every sequence with finish reason time', async () => {
    const model = createToyDecoderModel({ vocabSize: 11, seed: 1, maxPositions: 2000 });
    const slow = { ...model, forward: async (...a: Parameters<typeof model.forward>) => (await new Promise((r) => setTimeout(r, 2)), model.forward(...a)) };
    const r = await generate(slow, { inputIds: [1], maxNewTokens: 1000, stopTokenIds: [], maxTimeMs: 40 });
    expect(r.sequences[0]!.finishReason).toBe('time');
    expect(r.sequences[0]!.tokens.length).toBeLessThan(100);
  });

  it('non-finite logits are a typed numerical error naming the step (greedy in place, and through the processors)', async () => {
    const model = createToyDecoderModel({ vocabSize: 11, seed: 1 });
    for (const [bad, options] of [[NaN, {}], [Infinity, {}], [-Infinity, {}], [NaN, { temperature: 0.8, seed: 3 }], [Infinity, { repetitionPenalty: 1.2 }]] as const) {
      let calls = 0;
      const broken = {
        ...model,
        forward: async (...a: Parameters<typeof model.forward>) => {
          const l = await model.forward(...a);
          if (++calls === 3) l.data[4] = bad;
          return l;
        },
      };
      const err = await generate(broken, { inputIds: [1], maxNewTokens: 10, ...options }).catch((e: unknown) => e);
      expect(NumericalError.isInstance(err), `${bad} ${JSON.stringify(options)}`).toBe(true);
      expect((err as NumericalError).step).toBe(2);
    }
  });
});
