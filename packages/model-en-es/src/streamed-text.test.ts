import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createRng, generate, type Cache, type DecoderOnlyModel, type Logits, type Tokenizer } from '@kvt/core';
import { hfTokenizer, marianTokenizer, parseLlama2cTokenizer } from '@kvt/loaders';
import { modelFiles } from './index.js';

const FIXTURES = process.env.KVT_FIXTURES ?? join(modelFiles.path, '../../../../shared/fixtures');
const file = (name: string) => readFileSync(join(modelFiles.path, name));

/** A cache that holds nothing: the fake model below does not look at the past. */
const emptyCache = (rows: number): Cache => {
  let disposed = false;
  return {
    numLayers: 0, batchSize: rows, length: 0, capacity: 0, bytes: 0, maxLength: 4096,
    reorder: () => undefined, truncate: () => undefined, fork: () => emptyCache(rows),
    dispose: () => void (disposed = true), get disposed() { return disposed; },
  };
};

/**
 * Seeded random next-token logits over a real vocabulary, with the tokens of multi-byte text forced now and then
 * (byte-fallback pieces where the vocabulary lacks a character), so decoding meets incomplete characters, invalid
 * byte runs (stories260K's vocabulary is half byte tokens), spaces, and pieces of every kind.
 */
function randomTextModel(tokenizer: Tokenizer, seed: number): DecoderOnlyModel {
  const V = tokenizer.vocabSize;
  const rng = createRng(seed);
  const texts = ['é', ' señor', '¿qué?', ' 5 €', '😀', '中文', ' über', '—'];
  let forced: number[] = [];
  const step = (rows: number): Logits => {
    const data = new Float32Array(rows * V);
    for (let i = 0; i < data.length; i++) data[i] = rng.next() * 6;
    if (forced.length === 0 && rng.next() < 0.1)
      forced = tokenizer.encode(texts[Math.floor(rng.next() * texts.length)]!, { addSpecialTokens: false });
    const next = forced.shift();
    if (next !== undefined) for (let r = 0; r < rows; r++) data[r * V + next] = 1e4;
    return { data, batch: rows, positions: 1, vocabSize: V };
  };
  return {
    kind: 'decoder-only',
    config: { architecture: 'random', numLayers: 0, numHeads: 1, numKvHeads: 1, headDim: 1, vocabSize: V, maxPositions: 4096, specialTokens: { eos: [] } },
    createCache: (o) => emptyCache(o.batchSize),
    forward: async (ids) => step(ids.length),
    dispose: () => undefined,
  };
}

const tokenizers: [string, () => Tokenizer][] = [
  ['stories260K (llama2.c tok512.bin, byte fallback)', () => parseLlama2cTokenizer(readFileSync(join(FIXTURES, 'stories260K', 'tok512.bin')), 'tok512.bin', 512)],
  ['en-es tokenizer.json (Hugging Face tokenizers)', () => hfTokenizer(JSON.parse(file('tokenizer.json').toString('utf8')), JSON.parse(file('tokenizer_config.json').toString('utf8')), 'tokenizer.json')],
  ['en-es Marian source.spm + vocab.json', () => marianTokenizer({ sourceSpm: file('source.spm'), vocab: file('vocab.json') })],
];

describe('streamed text equals the final text (incremental detokenization, stop strings held back)', () => {
  for (const [name, make] of tokenizers) {
    it(`${name}: ${name.startsWith('stories') ? 400 : 300} seeded random generations`, async () => {
      const tokenizer = make();
      const runs = name.startsWith('stories') ? 400 : 300;
      const rng = createRng(99);
      let multiByte = 0;
      let stopped = 0;
      for (let i = 0; i < runs; i++) {
        const model = randomTextModel(tokenizer, 1000 + i);
        const prompt = [tokenizer.specialTokens.bos ?? 1];
        // every other run has stop strings: a common bigram, and one that never occurs
        const bigrams = ['e ', 'th', 'he', 'in', 'er', 'an', ' t', 'a ', 'o ', 's '];
        const stopStrings = i % 2 === 0 ? [bigrams[Math.floor(rng.next() * bigrams.length)]!, 'zzzzqq'] : [];
        let streamed = '';
        const result = await generate(model, {
          inputIds: prompt, tokenizer, maxNewTokens: 20 + Math.floor(rng.next() * 60), temperature: 1, seed: i, stopTokenIds: [], stopStrings,
          onToken: (e) => void (streamed += e.text),
        });
        const seq = result.sequences[0]!;
        const full = tokenizer.decode(seq.tokens);
        const cut = Math.min(...stopStrings.map((s) => full.indexOf(s)).filter((k) => k >= 0), full.length);
        expect(seq.text, `run ${i}: the result's text is the decoded tokens, cut before a stop string`).toBe(full.slice(0, cut));
        expect(streamed, `run ${i}: streamed = final`).toBe(seq.text);
        if (/[^\x00-\x7f]/.test(full)) multiByte++;
        if (seq.finishReason === 'stop-string') stopped++;
      }
      expect(multiByte, 'runs with multi-byte characters').toBeGreaterThan(runs / 10);
      expect(stopped, 'runs cut by a stop string').toBeGreaterThan(runs / 10);
    });
  }
});
