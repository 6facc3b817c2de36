import * as tf from '@tensorflow/tfjs-core';
import '@kvt/backend-cpu';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hfTokenizer, loadModel, marianTokenizer, parseSentencePieceModel } from '@kvt/loaders';
import { modelFiles } from './index.js';

interface Case {
  text: string;
  ids: number[];
  pieces: string[];
}
// Python SentencePiece's own ids for 300 dev sentences in each language and a few awkward strings
const reference = JSON.parse(readFileSync(new URL('../test-data/tokenizer-reference.json', import.meta.url), 'utf8')) as { cases: Case[] };
const file = (name: string) => readFileSync(join(modelFiles.path, name));
const EOS = 0;

describe("the en-es model's three tokenizer files agree with SentencePiece", () => {
  it(`tokenizer.json (via @huggingface/tokenizers): ${reference.cases.length} texts`, () => {
    const tok = hfTokenizer(JSON.parse(file('tokenizer.json').toString('utf8')), JSON.parse(file('tokenizer_config.json').toString('utf8')), 'tokenizer.json');
    for (const c of reference.cases) expect(tok.encode(c.text), c.text).toEqual([...c.ids, EOS]);
  });

  it('source.spm read by kvt (SentencePiece model file)', () => {
    const tok = parseSentencePieceModel(file('source.spm'), 'source.spm');
    for (const c of reference.cases) expect(tok.encode(c.text, { addSpecialTokens: false }), c.text).toEqual(c.ids);
  });

  it('source.spm + vocab.json (Marian, as opus-mt folders ship it), also decoding', () => {
    const tok = marianTokenizer({ sourceSpm: file('source.spm'), vocab: file('vocab.json') });
    for (const c of reference.cases) {
      expect(tok.encode(c.text), c.text).toEqual([...c.ids, EOS]);
      // SentencePiece's decode of known pieces gives the text back (modulo its whitespace rules)
      if (!c.ids.includes(1)) expect(tok.decode(c.ids), c.text).toBe(c.text.trim().replace(/ {2,}/g, ' '));
    }
  });

  it('a Marian folder without tokenizer.json loads with source.spm + vocab.json', async () => {
    const names = ['config.json', 'model.safetensors', 'generation_config.json', 'tokenizer_config.json', 'source.spm', 'target.spm', 'vocab.json'];
    const before = tf.memory().numTensors;
    const loaded = await loadModel(Object.fromEntries(names.map((n) => [n, new Uint8Array(file(n))])));
    try {
      if (loaded.kind !== 'encoder-decoder' || !loaded.tokenizer) throw new Error('expected a translation model with a tokenizer');
      expect(loaded.tokenizer.encode('Where is the train station?')).toEqual([347, 18, 12, 611, 1079, 9, EOS]);
      expect(loaded.tokenizer.decode([17, 354, 430, 56, 16, 1031, 117, 637, 9, EOS])).toBe('¿Dónde está la estación del tren?');
    } finally {
      loaded.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
