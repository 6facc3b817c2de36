import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate, translate, type DecoderOnlyModel, type EncoderDecoderModel, type Tokenizer } from '@kvt/core';
import { loadModel, type LoadedModel } from './index.js';
import { fixture, haveFixtures } from './__tests__/fixtures.js';

interface TraceStep {
  pos: number;
  token: number;
  next: number;
  logits?: number[];
}
const trace = haveFixtures
  ? (JSON.parse(readFileSync(fixture('stories260K', 'greedy_once_upon_a_time_n64.trace.json'), 'utf8')) as {
      prompt_tokens: number[];
      steps: TraceStep[];
    })
  : undefined;

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

for (const backend of ['cpu', 'wasm']) {
  describe.skipIf(!haveFixtures)(`real checkpoints on ${backend}`, () => {
    beforeAll(async () => {
      tf.env().set('IS_TEST', true);
      await tf.setBackend(backend);
    });

    for (const [label, path] of [
      ['llama2.c .bin', fixture('stories260K', 'stories260K.bin')],
      ['GGUF', fixture('stories260K-gguf', 'stories260K.gguf')],
    ] as const) {
      describe(`stories260K (${label})`, () => {
        let loaded: LoadedModel;
        let model: DecoderOnlyModel;
        let tokenizer: Tokenizer;
        beforeAll(async () => {
          loaded = await loadModel(path, label === 'GGUF' ? {} : {});
          if (loaded.kind !== 'decoder-only' || !loaded.tokenizer) throw new Error('expected a decoder-only model with a tokenizer');
          model = loaded.model;
          tokenizer = loaded.tokenizer;
        });
        afterAll(() => loaded.dispose());

        it('encodes the prompt as llama2.c does', () => {
          expect(tokenizer.encode('Once upon a time')).toEqual([1, 403, 407, 261, 378]);
          expect(trace!.prompt_tokens).toEqual([1, 403, 407, 261, 378]);
        });

        it("reproduces llama2.c's logits at the first 4 positions within 1e-4", async () => {
          const logits = await model.forward([trace!.prompt_tokens], null, { logits: 'all' });
          for (let p = 0; p < 4; p++) {
            const ref = trace!.steps[p]!.logits!;
            const row = logits.data.subarray(p * logits.vocabSize, (p + 1) * logits.vocabSize);
            expect(maxDiff(row, ref), `position ${p}`).toBeLessThanOrEqual(1e-4);
          }
        });

        it("generates llama2.c's 64-step greedy trace token for token", async () => {
          const before = tf.memory().numTensors;
          const prompt = trace!.prompt_tokens;
          const expected = trace!.steps.filter((s) => s.pos >= prompt.length - 1).map((s) => s.next);
          const result = await generate(model, { prompt: 'Once upon a time', tokenizer, maxNewTokens: expected.length });
          expect(result.promptTokens[0]).toEqual(prompt);
          expect(result.sequences[0]!.tokens).toEqual(expected);
          const text = readFileSync(fixture('stories260K', 'greedy_once_upon_a_time_n64.txt'), 'utf8').trim();
          expect('Once upon a time' + result.sequences[0]!.text).toBe(text);
          expect(tf.memory().numTensors).toBe(before);
        });
      });
    }

    describe('aren-transliteration (CTranslate2)', () => {
      let loaded: LoadedModel;
      let model: EncoderDecoderModel;
      let src: Tokenizer;
      let tgt: Tokenizer;
      const expected = haveFixtures
        ? (JSON.parse(readFileSync(fixture('aren-transliteration', 'expected.json'), 'utf8')) as {
            cases: { source: string[]; target?: string[]; beam_size?: number[]; max_decoding_length?: number; target_prefix?: string[]; num_hypotheses?: number; best_two?: string[][] }[];
          })
        : { cases: [] };
      beforeAll(async () => {
        loaded = await loadModel(fixture('aren-transliteration'));
        if (loaded.kind !== 'encoder-decoder') throw new Error('expected an encoder-decoder');
        model = loaded.model;
        src = loaded.tokenizer!;
        tgt = loaded.targetTokenizer!;
      });
      afterAll(() => loaded.dispose());

      const words = (ids: number[]) => tgt.decode(ids).split(' ').filter(Boolean);

      it('translates every case of expected.json (greedy, beam 2, length limit, alternatives after a prefix)', async () => {
        for (const c of expected.cases) {
          const sourceIds = src.encode(c.source.join(' '));
          if (c.best_two) {
            const prefix = tgt.encode(c.target_prefix!.join(' '));
            const r = await translate(model, { sourceIds, targetPrefix: prefix, alternatives: c.num_hypotheses!, maxNewTokens: 250 });
            const hyps = r.translations[0]!.hypotheses;
            expect(hyps).toHaveLength(c.num_hypotheses!);
            expect(words(hyps[0]!.tokens)).toEqual(c.best_two[0]);
            expect(words(hyps[1]!.tokens)).toEqual(c.best_two[1]);
          } else if (c.max_decoding_length) {
            const r = await translate(model, { sourceIds, maxNewTokens: c.max_decoding_length });
            expect(words(r.translations[0]!.tokens)).toEqual(c.target);
          } else {
            for (const beams of c.beam_size ?? [1]) {
              const r = await translate(model, { sourceIds, numBeams: beams, maxNewTokens: 250 });
              expect(words(r.translations[0]!.tokens), `beam ${beams}`).toEqual(c.target);
            }
          }
        }
      });

      it('reproduces the teacher-forced logits within 1e-4', async () => {
        const ref = JSON.parse(readFileSync(fixture('aren-transliteration', 'teacher_forced_logits_atzmon.json'), 'utf8')) as {
          source_ids: number[];
          decoder_input_ids: number[];
          logits: number[][];
        };
        const state = await model.encode([ref.source_ids]);
        try {
          const logits = await model.decode([ref.decoder_input_ids], state, null, { logits: 'all' });
          ref.logits.forEach((row, p) => {
            expect(maxDiff(logits.data.subarray(p * logits.vocabSize, (p + 1) * logits.vocabSize), row), `position ${p}`).toBeLessThanOrEqual(1e-4);
          });
        } finally {
          state.dispose();
        }
      });
    });
  });
}
