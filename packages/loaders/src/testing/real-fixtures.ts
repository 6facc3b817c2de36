/**
 * The real-fixture half of the conformance suite: stories260K (llama2.c `.bin` and GGUF) against llama2.c's greedy
 * trace and logits, aren-transliteration (CTranslate2) against CTranslate2's asserted outputs and teacher-forced
 * logits, with a backend's own cache. Runs in Node and in the browser (fixtures by path or URL).
 *
 * @example
 * ```ts
 * describeRealFixtures({ backend: 'wasm', cache: 'backend', fixture: (p) => join(FIXTURES, p), readText: (p) => readFile(join(FIXTURES, p), 'utf8') });
 * ```
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AbortedError, generate, translate, type Cache, type DecoderOnlyModel, type EncoderDecoderModel, type GenerateResult, type Tokenizer } from '@kvt/core';
import { loadModel, type LoadedModel } from '../load-model.js';
import type { ModelSource } from '../bytes/sources.js';

export interface RealFixtureOptions {
  readonly backend: string;
  readonly cache: 'backend' | 'concat';
  /** A fixture file or folder (relative to the fixtures root) as a loadable source. */
  readonly fixture: (path: string) => ModelSource;
  /** A fixture text file's contents. */
  readonly readText: (path: string) => Promise<string>;
  /** Logit tolerance (absolute; default 1e-4). */
  readonly tolerance?: number;
  /**
   * Also run the 64-step greedy trace from the GGUF file (default true). Its loader is the same on every backend and
   * its tensors equal the .bin file's, so a slow backend may check only its logits and the .bin file's trace.
   */
  readonly ggufTrace?: boolean;
  readonly setup?: () => Promise<unknown>;
}

interface TraceStep {
  pos: number;
  token: number;
  next: number;
  logits?: number[];
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

export function describeRealFixtures(o: RealFixtureOptions): void {
  const tol = o.tolerance ?? 1e-4;
  describe(`real fixtures on ${o.backend} (${o.cache} cache)`, () => {
    let trace: { prompt_tokens: number[]; steps: TraceStep[] };
    let text: string;
    beforeAll(async () => {
      await o.setup?.();
      tf.env().set('IS_TEST', true);
      await tf.setBackend(o.backend);
      trace = JSON.parse(await o.readText('stories260K/greedy_once_upon_a_time_n64.trace.json'));
      text = (await o.readText('stories260K/greedy_once_upon_a_time_n64.txt')).trim();
    });

    for (const [label, path] of [
      ['llama2.c .bin', 'stories260K/stories260K.bin'],
      ['GGUF', 'stories260K-gguf/stories260K.gguf'],
    ] as const) {
      describe(`stories260K (${label})`, () => {
        let loaded: LoadedModel;
        let model: DecoderOnlyModel;
        let tokenizer: Tokenizer;
        beforeAll(async () => {
          loaded = await loadModel(o.fixture(path));
          if (loaded.kind !== 'decoder-only' || !loaded.tokenizer) throw new Error('expected a decoder-only model with a tokenizer');
          model = loaded.model;
          tokenizer = loaded.tokenizer;
        });
        afterAll(() => loaded?.dispose());

        it('encodes the prompt as llama2.c does', () => {
          expect(tokenizer.encode('Once upon a time')).toEqual([1, 403, 407, 261, 378]);
          expect(trace.prompt_tokens).toEqual([1, 403, 407, 261, 378]);
        });

        it(`reproduces llama2.c's logits at the first 4 positions within ${tol}`, async () => {
          const logits = await model.forward([trace.prompt_tokens], null, { logits: 'all' });
          for (let p = 0; p < 4; p++) {
            const row = logits.data.subarray(p * logits.vocabSize, (p + 1) * logits.vocabSize);
            expect(maxDiff(row, trace.steps[p]!.logits!), `position ${p}`).toBeLessThanOrEqual(tol);
          }
        });

        it.skipIf(label === 'GGUF' && o.ggufTrace === false)("generates llama2.c's 64-step greedy trace token for token, leaking nothing", async () => {
          const before = tf.memory().numTensors;
          const prompt = trace.prompt_tokens;
          const expected = trace.steps.filter((s) => s.pos >= prompt.length - 1).map((s) => s.next);
          const result = await generate(model, { prompt: 'Once upon a time', tokenizer, maxNewTokens: expected.length, cache: o.cache });
          expect(result.promptTokens[0]).toEqual(prompt);
          expect(result.sequences[0]!.tokens).toEqual(expected);
          expect('Once upon a time' + result.sequences[0]!.text).toBe(text);
          expect(tf.memory().numTensors).toBe(before);
        });

        if (label === 'llama2.c .bin') {
          it('a timer\'s abort (setTimeout, AbortSignal.timeout) stops a 500-token greedy run and a 4-beam run within one step', async () => {
            for (const numBeams of [1, 4]) {
              for (const timer of ['setTimeout', 'AbortSignal.timeout'] as const) {
                const what = `${numBeams} beam(s), ${timer}`;
                // the model as the loop sees it, recording when each model call starts and which cache it made
                const starts: number[] = [];
                let cache: Cache | undefined;
                const watched: DecoderOnlyModel = {
                  kind: 'decoder-only',
                  config: model.config,
                  createCache: (options) => (cache = model.createCache(options)),
                  forward: (ids, c, f) => (starts.push(performance.now()), model.forward(ids, c, f)),
                  dispose: () => undefined,
                };
                const controller = new AbortController();
                const signal = timer === 'setTimeout' ? controller.signal : AbortSignal.timeout(30);
                let firedAt = Infinity;
                signal.addEventListener('abort', () => (firedAt = performance.now()));
                if (timer === 'setTimeout') setTimeout(() => controller.abort(), 30);
                const before = tf.memory().numTensors;
                const err = await generate(watched, {
                  // 500 tokens: longer than the 30 ms timer on every backend (stories260K decodes 200 tokens within it on wasm)
                  prompt: 'Once upon a time', tokenizer, maxNewTokens: 500, stopTokenIds: [], numBeams, cache: o.cache, signal,
                }).catch((e: unknown) => e);
                expect(AbortedError.isInstance(err), what).toBe(true);
                const late = starts.filter((t) => t > firedAt).length;
                expect(late, `${what}: model calls started after the timer fired`).toBeLessThanOrEqual(1);
                expect(starts.length, `${what}: the run was stopped part way`).toBeLessThan(500);
                const partial = (err as AbortedError<GenerateResult>).partial.sequences[0]!;
                // greedy: a token per model call whose logits were read before the abort (the last call's may not be)
                if (numBeams === 1) expect(partial.tokens.length, `${what}: partial output`).toBeGreaterThanOrEqual(starts.length - late - 1);
                expect(partial.finishReason).toBe('aborted');
                expect(cache?.disposed, `${what}: cache released`).toBe(true);
                expect(tf.memory().numTensors, `${what}: tensors released`).toBe(before);
              }
            }
          });
        }
      });
    }

    describe('aren-transliteration (CTranslate2)', () => {
      let loaded: LoadedModel;
      let model: EncoderDecoderModel;
      let src: Tokenizer;
      let tgt: Tokenizer;
      beforeAll(async () => {
        loaded = await loadModel(o.fixture('aren-transliteration/model.bin'));
        if (loaded.kind !== 'encoder-decoder' || !loaded.tokenizer || !loaded.targetTokenizer) throw new Error('expected an encoder-decoder with vocabularies');
        model = loaded.model;
        src = loaded.tokenizer;
        tgt = loaded.targetTokenizer;
      });
      afterAll(() => loaded?.dispose());
      const words = (ids: number[]) => tgt.decode(ids).split(' ').filter(Boolean);

      it('translates every case of expected.json (greedy, beam 2, length limit, alternatives after a prefix)', async () => {
        const expected = JSON.parse(await o.readText('aren-transliteration/expected.json')) as {
          cases: { source: string[]; target?: string[]; beam_size?: number[]; max_decoding_length?: number; target_prefix?: string[]; num_hypotheses?: number; best_two?: string[][] }[];
        };
        const before = tf.memory().numTensors;
        expect(expected.cases.length).toBeGreaterThanOrEqual(4);
        for (const c of expected.cases) {
          const sourceIds = src.encode(c.source.join(' '));
          if (c.best_two) {
            const prefix = tgt.encode(c.target_prefix!.join(' '));
            const r = await translate(model, { sourceIds, targetPrefix: prefix, alternatives: c.num_hypotheses!, maxNewTokens: 250, cache: o.cache });
            const hyps = r.translations[0]!.hypotheses;
            expect(hyps).toHaveLength(c.num_hypotheses!);
            expect(words(hyps[0]!.tokens)).toEqual(c.best_two[0]);
            expect(words(hyps[1]!.tokens)).toEqual(c.best_two[1]);
          } else if (c.max_decoding_length) {
            const r = await translate(model, { sourceIds, maxNewTokens: c.max_decoding_length, cache: o.cache });
            expect(words(r.translations[0]!.tokens)).toEqual(c.target);
          } else {
            for (const beams of c.beam_size ?? [1]) {
              const r = await translate(model, { sourceIds, numBeams: beams, maxNewTokens: 250, cache: o.cache });
              expect(words(r.translations[0]!.tokens), `beam ${beams}`).toEqual(c.target);
            }
          }
        }
        expect(tf.memory().numTensors).toBe(before);
      });

      it(`reproduces the teacher-forced logits within ${tol}`, async () => {
        const ref = JSON.parse(await o.readText('aren-transliteration/teacher_forced_logits_atzmon.json')) as {
          source_ids: number[];
          decoder_input_ids: number[];
          logits: number[][];
        };
        const state = await model.encode([ref.source_ids]);
        const cache = model.createCache({ encoderState: state, kind: o.cache });
        try {
          const logits = await model.decode([ref.decoder_input_ids], state, cache, { logits: 'all' });
          ref.logits.forEach((row, p) => {
            expect(maxDiff(logits.data.subarray(p * logits.vocabSize, (p + 1) * logits.vocabSize), row), `position ${p}`).toBeLessThanOrEqual(tol);
          });
        } finally {
          cache.dispose();
          state.dispose();
        }
      });
    });
  });
}
