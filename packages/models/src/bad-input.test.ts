/**
 * Bad input, table-driven: wrong types and out-of-range values for every generation option and every request field
 * of `generate` and `translate`. Each must be a typed kvt error thrown before any model call, leaving no tensor.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GENERATION_OPTIONS, KvtError, generate, translate, type DecoderOnlyModel, type EncoderDecoderModel, type Tokenizer } from '@kvt/core';
import { tinyDecoderOnlyModels, tinyEncoderDecoderModels } from './testing/tiny-models.js';

const V = 61; // the tiny models' vocabulary
const count = [0, -1, 1.5, NaN, Infinity, '4', null, true, {}, [], 1e9];
const atLeast0 = [-1, 1.5, NaN, Infinity, '2', null, true, {}];
const tokenId = [-1, V, 1.5, NaN, '3', null, {}];
const tokenList = [[V], [-1], [1.5], 'x', 5, null, [null], {}];
const fns = [5, 'x', [5], [null], {}, null];

/** Bad values of every generation option: a new option without an entry here fails the coverage test. */
const OPTION_CASES: Record<(typeof GENERATION_OPTIONS)[number], unknown[]> = {
  maxNewTokens: count,
  maxLength: count,
  minNewTokens: atLeast0,
  minLength: atLeast0,
  temperature: [-1, NaN, Infinity, '0.5', null, 1e-300, {}],
  topK: atLeast0,
  topP: [0, -0.1, 1.5, NaN, '0.9', null],
  minP: [-0.1, 1, 2, NaN, '0.1', null],
  repetitionPenalty: [0, -1, 1e-300, 1e300, NaN, Infinity, '1.1', null],
  noRepeatNgramSize: atLeast0,
  badWordsIds: [[[V]], [[]], [5], 'x', null, [[1.5]], 5],
  suppressTokens: tokenList,
  beginSuppressTokens: tokenList,
  forcedBosTokenId: tokenId,
  forcedEosTokenId: tokenId,
  seed: [-1, 1.5, 2 ** 32, NaN, '1', null],
  stopTokenIds: tokenList,
  stopStrings: [[''], [5], 'x', null, [null], ['ok']], // ['ok']: no tokenizer to match it with
  maxTimeMs: [0, -5, NaN, '10', null, {}],
  numBeams: count,
  lengthPenalty: [NaN, Infinity, '1', null, {}],
  earlyStopping: ['yes', 1, null, {}],
  numReturnSequences: count,
  logprobs: ['true', 1, null, {}],
  topLogprobs: [...atLeast0, 1e9],
  logitsProcessors: fns,
  stoppingCriteria: fns,
};

const tokenizer: Tokenizer = {
  vocabSize: V,
  specialTokens: {},
  encode: (text) => [1, ...[...text].map((c) => 3 + (c.charCodeAt(0) % 50))],
  decode: (ids) => ids.join(' '),
  createStreamDecoder: () => ({ push: () => '', peek: () => '', flush: () => '' }),
};

const GENERATE_CASES: Record<string, unknown[]> = {
  inputIds: [5, 'x', null, [[]], [[1, V]], [[1.5]], [['a']], {}, []],
  prompt: [5, null, [5], {}, []],
  tokenizer: [{}, 5, 'x', null, { encode: 5 }],
  onToken: [5, 'x', {}],
  signal: ['x', 5, {}, { aborted: 'no' }],
  cache: ['fast', 5, null],
  max_new_tokens: [4],
  maxTokens: [4],
  temprature: [0.5],
};

const TRANSLATE_CASES: Record<string, unknown[]> = {
  sourceIds: [5, 'x', null, [[]], [[1, V + 3]], [[1.5]], {}, []],
  text: [5, null, [5], {}, [], '', '   '],
  targetPrefix: [[V], 'x', 5, [[1], [2], [3], [4]], [['a']]],
  alternatives: [0, -1, 1.5, 1e9, 'x', null],
  tokenizer: [{}, 5, null],
  targetTokenizer: [{}, 5],
  signal: ['x'],
  onToken: [5],
  cache: ['fast'],
  num_beams: [4],
  beams: [4],
};

describe('bad input: typed errors before any compute, nothing left behind', () => {
  let llama: DecoderOnlyModel;
  let marian: EncoderDecoderModel;
  let calls = 0;
  beforeAll(async () => {
    await tf.setBackend('cpu');
    llama = tinyDecoderOnlyModels[0]!.build();
    marian = tinyEncoderDecoderModels[1]!.build(V);
  });
  afterAll(() => {
    llama.dispose();
    marian.dispose();
  });

  const counting = <M extends object>(model: M, methods: string[]): M =>
    new Proxy(model, {
      get(target, key, receiver) {
        const v = Reflect.get(target, key, receiver);
        if (typeof v !== 'function') return v;
        return methods.includes(key as string) ? (...args: unknown[]) => (calls++, v.apply(target, args)) : v.bind(target);
      },
    });

  const expectRejected = async (what: string, run: () => Promise<unknown>) => {
    const before = tf.memory().numTensors;
    calls = 0;
    const e = await run().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(KvtError.isInstance(e), `${what}: ${e === undefined ? 'accepted' : String(e)}`).toBe(true);
    expect(calls, `${what}: model calls before the error`).toBe(0);
    expect(tf.memory().numTensors, `${what}: tensors left`).toBe(before);
  };

  it('the table covers every generation option', () => {
    expect(Object.keys(OPTION_CASES).sort()).toEqual([...GENERATION_OPTIONS].sort());
  });

  it('generate: every option and request field', async () => {
    const model = counting(llama, ['forward', 'createCache']);
    let n = 0;
    for (const [option, values] of [...Object.entries(OPTION_CASES), ...Object.entries(GENERATE_CASES)]) {
      for (const value of values) {
        await expectRejected(`generate ${option}: ${JSON.stringify(value)}`, () => generate(model, { inputIds: [1, 5, 9], [option]: value } as never));
        n++;
      }
    }
    // combinations that are wrong together
    for (const request of [
      { inputIds: [1, 5], prompt: 'x', tokenizer },
      { prompt: 'x' },
      { inputIds: Array(200).fill(3) },
      { inputIds: [1], numBeams: 2, temperature: 0.5 },
      { inputIds: [1], numBeams: 2, numReturnSequences: 3 },
    ]) {
      await expectRejected(`generate ${JSON.stringify(request)}`, () => generate(model, request as never));
      n++;
    }
    console.log(`bad-input cases for generate: ${n}`);
  });

  it('translate: every option and request field', async () => {
    const model = counting(marian, ['encode', 'decode', 'createCache']);
    let n = 0;
    for (const [option, values] of [...Object.entries(OPTION_CASES), ...Object.entries(TRANSLATE_CASES)]) {
      for (const value of values) {
        await expectRejected(`translate ${option}: ${JSON.stringify(value)}`, () => translate(model, { sourceIds: [4, 9, 2], [option]: value } as never));
        n++;
      }
    }
    for (const request of [{ sourceIds: [4], text: 'x', tokenizer }, { text: 'x' }, { sourceIds: [4], alternatives: 3, numBeams: 2 }]) {
      await expectRejected(`translate ${JSON.stringify(request)}`, () => translate(model, request as never));
      n++;
    }
    console.log(`bad-input cases for translate: ${n}`);
  });

  it('sizes past the memory bound are typed errors naming the limit (beams, samples, alternatives)', async () => {
    // the 15M shape's config, without its weights: the bound is checked before any model call
    const config = { architecture: 'llama', numLayers: 6, numHeads: 6, numKvHeads: 6, headDim: 48, vocabSize: 32000, maxPositions: 1024, specialTokens: { eos: [2] } };
    const shape: DecoderOnlyModel = { kind: 'decoder-only', config, createCache: () => { throw new Error('no'); }, forward: () => { throw new Error('no'); }, dispose: () => undefined };
    const model = counting(shape, ['forward', 'createCache']);
    for (const request of [{ numBeams: 30000 }, { numBeams: 2000, maxNewTokens: 900 }, { temperature: 1, numReturnSequences: 100000 }]) {
      await expectRejected(`generate ${JSON.stringify(request)}`, () => generate(model, { inputIds: [1, 2], ...request }));
      const e = await generate(model, { inputIds: [1, 2], ...request }).catch((err: unknown) => err);
      expect((e as Error).message).toMatch(/MiB/);
    }
  });
});
