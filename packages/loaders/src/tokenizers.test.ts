import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { KvtError, ModelFormatError, UnsupportedError } from '@kvt/core';
import { fixture, haveFixtures } from './__tests__/fixtures.js';
import { marianTokenizer, parseLlama2cTokenizer, parseSentencePieceModel, readSentencePieceModel } from './index.js';

const texts = ['Once upon a time', 'Lily and Tom went to the park.', '  two  spaces ', 'naïve café 😀', '', 'x'];

// A hand-written SentencePiece ModelProto: pieces (field 1), trainer_spec.model_type (2.3), normalizer_spec (3).
function spmBytes(pieces: [string, number, number][], modelType = 1, normalizer: { name?: string; addDummyPrefix?: boolean } = {}): Uint8Array {
  const out: number[] = [];
  const varint = (v: number, to: number[]) => {
    while (v > 0x7f) {
      to.push((v & 0x7f) | 0x80);
      v = Math.floor(v / 128);
    }
    to.push(v);
  };
  const field = (n: number, wire: number, to: number[]) => varint(n * 8 + wire, to);
  const bytesField = (n: number, body: number[] | Uint8Array, to: number[]) => {
    field(n, 2, to);
    varint(body.length, to);
    to.push(...body);
  };
  for (const [piece, score, type] of pieces) {
    const m: number[] = [];
    bytesField(1, new TextEncoder().encode(piece), m);
    field(2, 5, m);
    m.push(...new Uint8Array(Float32Array.of(score).buffer));
    field(3, 0, m);
    varint(type, m);
    bytesField(1, m, out);
  }
  const trainer: number[] = [];
  field(3, 0, trainer);
  varint(modelType, trainer);
  bytesField(2, trainer, out);
  const norm: number[] = [];
  if (normalizer.name) bytesField(1, new TextEncoder().encode(normalizer.name), norm);
  if (normalizer.addDummyPrefix !== undefined) {
    field(3, 0, norm);
    varint(normalizer.addDummyPrefix ? 1 : 0, norm);
  }
  bytesField(3, norm, out);
  return Uint8Array.from(out);
}

const unigram: [string, number, number][] = [
  ['</s>', 0, 3],
  ['<unk>', 0, 2],
  ['<pad>', 0, 3],
  ['\u2581', -2, 1],
  ['\u2581hello', -1, 1],
  ['\u2581he', -3, 1],
  ['llo', -3, 1],
  ['h', -5, 1],
  ['e', -5, 1],
  ['l', -5, 1],
  ['o', -5, 1],
  ['\u2581world', -1, 1],
  ['fi', -4, 1],
];

describe('SentencePiece model files', () => {
  it.skipIf(!haveFixtures)("tok512.model (BPE) tokenizes like llama2.c's tok512.bin made from it", () => {
    const model = parseSentencePieceModel(readFileSync(fixture('stories260K', 'tok512.model')), 'tok512.model');
    const bin = parseLlama2cTokenizer(readFileSync(fixture('stories260K', 'tok512.bin')), 'tok512.bin', 512);
    expect(model.vocabSize).toBe(512);
    expect(model.encode('Once upon a time')).toEqual([1, 403, 407, 261, 378]); // llama2.c's trace
    for (const t of texts) {
      const ids = model.encode(t);
      expect(ids, t).toEqual(bin.encode(t));
      expect(model.decode(ids), t).toBe(bin.decode(ids));
    }
  });

  it('reads the normalizer settings and honours add_dummy_prefix and NFKC', () => {
    const spm = readSentencePieceModel(spmBytes(unigram, 1, { name: 'nmt_nfkc', addDummyPrefix: false }), 'x.model');
    expect(spm).toMatchObject({ modelType: 1, normalizer: 'nmt_nfkc', addDummyPrefix: false, removeExtraWhitespaces: true });
    expect(spm.pieces[4]).toEqual({ piece: '\u2581hello', score: -1, type: 1 });
    const withPrefix = parseSentencePieceModel(spmBytes(unigram), 'x.model');
    expect(withPrefix.encode('hello  world ', { addSpecialTokens: false })).toEqual([4, 11]);
    const noPrefix = parseSentencePieceModel(spmBytes(unigram, 1, { addDummyPrefix: false }), 'x.model');
    expect(noPrefix.encode('hello', { addSpecialTokens: false })).toEqual([7, 8, 6]); // h e llo: no ▁hello
    // NFKC folds the ligature ﬁ (U+FB01) into "fi"
    const nfkc = parseSentencePieceModel(spmBytes(unigram, 1, { name: 'nmt_nfkc' }), 'x.model');
    expect(nfkc.encode('\uFB01', { addSpecialTokens: false })).toEqual([3, 12]);
    const identity = parseSentencePieceModel(spmBytes(unigram, 1, { name: 'identity' }), 'x.model');
    expect(identity.encode('\uFB01', { addSpecialTokens: false })).toEqual([3, 1]);
  });

  it('rejects files that are not SentencePiece models with a typed error', () => {
    expect(() => readSentencePieceModel(new Uint8Array(0), 'x.model')).toThrow(ModelFormatError);
    expect(() => readSentencePieceModel(Uint8Array.of(0x0a, 0x40, 1, 2), 'x.model')).toThrow(ModelFormatError); // piece past the end
    expect(() => parseSentencePieceModel(spmBytes(unigram, 3), 'x.model')).toThrow(KvtError); // word model: unsupported
  });
});

describe("Marian's source.spm + vocab.json", () => {
  // vocab.json numbers pieces differently from the spm and adds a language code and a target-only piece
  const vocab = { '</s>': 0, '<unk>': 1, '<pad>': 2, '\u2581world': 3, '\u2581hello': 4, '>>es<<': 5, '\u2581hola': 6, h: 7, e: 8, llo: 9, '\u2581': 10 };
  const files = { sourceSpm: spmBytes(unigram), vocab: new TextEncoder().encode(JSON.stringify(vocab)) };

  it("maps the source model's pieces to vocab.json ids, appends </s>, keeps a leading language code", () => {
    const tok = marianTokenizer(files);
    expect(tok.vocabSize).toBe(11);
    expect(tok.specialTokens).toEqual({ eos: 0, pad: 2, unk: 1 });
    expect(tok.encode('hello world')).toEqual([4, 3, 0]);
    expect(tok.encode('>>es<< hello', { addSpecialTokens: false })).toEqual([5, 4]);
    // ▁he is a source piece missing from vocab.json → <unk>; an unknown character → <unk>
    expect(tok.encode('he', { addSpecialTokens: false })).toEqual([1]);
    expect(tok.encode('q', { addSpecialTokens: false })).toEqual([10, 1]);
  });

  it('decodes as SentencePiece joins pieces, skipping or keeping special tokens', () => {
    const tok = marianTokenizer(files);
    expect(tok.decode([6, 3, 0])).toBe('hola world');
    expect(tok.decode([2, 6, 3, 0], { skipSpecialTokens: false })).toBe('<pad> hola world</s>');
    const stream = tok.createStreamDecoder();
    expect([6, 3, 0].map((id) => stream.push(id)).join('') + stream.flush()).toBe('hola world');
  });

  it('rejects a vocab.json that is not a map of distinct ids, or has no <unk>', () => {
    const bad = (v: string) => () => marianTokenizer({ ...files, vocab: new TextEncoder().encode(v) });
    expect(bad('[1,2]')).toThrow(ModelFormatError);
    expect(bad('{"a": 0, "b": 0, "<unk>": 1}')).toThrow(/two pieces/);
    expect(bad('{"a": -1, "<unk>": 1}')).toThrow(/non-negative integer/);
    expect(bad('{"a": 0}')).toThrow(/<unk>/);
    expect(bad('not json')).toThrow(ModelFormatError);
    expect(() => marianTokenizer({ ...files, config: { separate_vocabs: true } })).toThrow(UnsupportedError);
  });
});
