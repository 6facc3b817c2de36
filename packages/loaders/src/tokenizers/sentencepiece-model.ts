import { ModelFormatError, UnsupportedError, type Tokenizer } from '@kvt/core';
import { BinaryReader } from '../bytes/binary-reader.js';
import { hfTokenizer } from './hf-tokenizer.js';
import { ScoreBpeTokenizer } from './score-bpe.js';

/** One piece of a SentencePiece model. */
export interface SentencePiece {
  readonly piece: string;
  readonly score: number;
  /** 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte. */
  readonly type: number;
}

/** What a SentencePiece `ModelProto` holds that tokenizing needs. */
export interface SentencePieceModel {
  readonly pieces: readonly SentencePiece[];
  /** 1 Unigram, 2 BPE, 3 word, 4 char. */
  readonly modelType: number;
  readonly byteFallback: boolean;
  /** The normalizer's name (`identity`, `nmt_nfkc`, `nfkc`, ...). */
  readonly normalizer: string;
  /** Prepend ▁ to the text (SentencePiece's default). */
  readonly addDummyPrefix: boolean;
  /** Strip the text and collapse runs of spaces (SentencePiece's default). */
  readonly removeExtraWhitespaces: boolean;
}

/**
 * Reads a SentencePiece model file (`tokenizer.model`, `*.spm`: a protobuf `ModelProto`): the pieces with their
 * scores and types, the model type and the normalizer's settings, with a minimal protobuf reader (no protobuf library
 * needed for a handful of fields). Malformed files raise {@link ModelFormatError}.
 *
 * @example
 * ```ts
 * const spm = readSentencePieceModel(bytes, 'source.spm');
 * spm.pieces[3]; // { piece: '▁the', score: -3.1, type: 1 }
 * ```
 */
export function readSentencePieceModel(bytes: Uint8Array, file: string): SentencePieceModel {
  const r = new BinaryReader(bytes, file);
  const pieces: SentencePiece[] = [];
  let modelType = 1;
  let byteFallback = false;
  let normalizer = 'nmt_nfkc';
  let addDummyPrefix = true;
  let removeExtraWhitespaces = true;
  const varint = (what: string): number => {
    let v = 0;
    let shift = 0;
    for (;;) {
      const b = r.u8(what);
      v += (b & 0x7f) * 2 ** shift;
      if (!(b & 0x80)) return v;
      shift += 7;
      if (shift > 63) r.fail(`${what}: varint too long`); // negative int32s take 10 bytes
    }
  };
  const skip = (wire: number, what: string) => {
    if (wire === 0) varint(what);
    else if (wire === 1) r.take(8, what);
    else if (wire === 2) r.take(varint(`${what} length`), what);
    else if (wire === 5) r.take(4, what);
    else r.fail(`${what}: unsupported protobuf wire type ${wire}`);
  };
  const message = (end: number, onField: (field: number, wire: number) => boolean) => {
    while (r.offset < end) {
      const key = varint('field key');
      const field = Math.floor(key / 8);
      const wire = key & 7;
      if (!onField(field, wire)) skip(wire, `field ${field}`);
    }
    if (r.offset !== end) r.fail('a protobuf message overruns its length');
  };
  const submessage = (what: string, onField: (field: number, wire: number) => boolean) => {
    const length = varint(`${what} length`); // read before r.offset: the length's own bytes come first
    const end = r.offset + length;
    if (end > bytes.byteLength) r.fail(`${what} runs past the end of the file`);
    message(end, onField);
  };
  message(bytes.byteLength, (field, wire) => {
    if (field === 1 && wire === 2) {
      const p = { piece: '', score: 0, type: 1 };
      submessage('a piece', (f, w) => {
        if (f === 1 && w === 2) p.piece = r.utf8(varint('piece text length'), 'piece text');
        else if (f === 2 && w === 5) p.score = r.f32('piece score');
        else if (f === 3 && w === 0) p.type = varint('piece type');
        else return false;
        return true;
      });
      pieces.push(p);
      return true;
    }
    if (field === 2 && wire === 2) {
      submessage('trainer_spec', (f, w) => {
        if (f === 3 && w === 0) modelType = varint('model_type');
        else if (f === 35 && w === 0) byteFallback = varint('byte_fallback') !== 0;
        else return false;
        return true;
      });
      return true;
    }
    if (field === 3 && wire === 2) {
      submessage('normalizer_spec', (f, w) => {
        if (f === 1 && w === 2) normalizer = r.utf8(varint('normalizer name length'), 'normalizer name');
        else if (f === 3 && w === 0) addDummyPrefix = varint('add_dummy_prefix') !== 0;
        else if (f === 4 && w === 0) removeExtraWhitespaces = varint('remove_extra_whitespaces') !== 0;
        else return false;
        return true;
      });
      return true;
    }
    return false;
  });
  if (pieces.length === 0) throw new ModelFormatError(file, 'no pieces: not a SentencePiece model');
  return { pieces, modelType, byteFallback, normalizer, addDummyPrefix, removeExtraWhitespaces };
}

/**
 * A tokenizer from a SentencePiece model file (`tokenizer.model`, `*.spm`). BPE models run on
 * {@link ScoreBpeTokenizer}; Unigram models become a `tokenizer.json` Unigram run by `@huggingface/tokenizers`, with
 * the model's whitespace settings and NFKC for the `*nfkc` normalizers (SentencePiece's precompiled character map is
 * not read: its few NMT-specific rules beyond NFKC, such as dropping control characters, are not applied).
 *
 * @example
 * ```ts
 * const tokenizer = parseSentencePieceModel(bytes, 'tokenizer.model');
 * tokenizer.encode('Where is the train station?');
 * ```
 */
export function parseSentencePieceModel(bytes: Uint8Array, file: string, options: { addEos?: boolean } = {}): Tokenizer {
  return sentencePieceTokenizer(readSentencePieceModel(bytes, file), file, options);
}

/**
 * A tokenizer from an already read SentencePiece model (see {@link parseSentencePieceModel}).
 *
 * @example
 * ```ts
 * const spm = readSentencePieceModel(bytes, 'source.spm');
 * const tokenizer = sentencePieceTokenizer(spm, 'source.spm');
 * ```
 */
export function sentencePieceTokenizer(spm: SentencePieceModel, file: string, options: { addEos?: boolean } = {}): Tokenizer {
  const { pieces, modelType, byteFallback } = spm;
  const idOfType = (t: number) => pieces.findIndex((p) => p.type === t);
  const find = (s: string) => pieces.findIndex((p) => p.piece === s);
  const unk = idOfType(2);
  const bos = find('<s>');
  const eos = find('</s>');
  const control = pieces.flatMap((p, i) => (p.type === 3 || p.type === 2 ? [i] : []));
  if (modelType === 2) {
    const first = find('<0x00>');
    return new ScoreBpeTokenizer({
      pieces: pieces.map((p) => p.piece),
      scores: Float32Array.from(pieces.map((p) => p.score)),
      spaceSymbol: '\u2581',
      ...(first >= 0 ? { byteFallbackStart: first } : {}),
      ...(bos >= 0 ? { bos } : {}),
      ...(eos >= 0 ? { eos } : {}),
      ...(unk >= 0 ? { unk } : {}),
      specialIds: control,
      addPrefixSpace: spm.addDummyPrefix,
    });
  }
  if (modelType !== 1) throw new UnsupportedError(`${file}: SentencePiece model type ${modelType}; kvt reads BPE and Unigram.`);
  const prependScheme = spm.addDummyPrefix ? 'always' : 'never';
  const special = control.map((id) => ({ id, content: pieces[id]!.piece, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  const json = {
    version: '1.0',
    added_tokens: special,
    normalizer: { type: 'Sequence', normalizers: unigramNormalizers(spm) },
    pre_tokenizer: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: prependScheme, split: true },
    post_processor:
      options.addEos && eos >= 0
        ? {
            type: 'TemplateProcessing',
            single: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
            pair: [{ Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
            special_tokens: { '</s>': { id: '</s>', ids: [eos], tokens: ['</s>'] } },
          }
        : null,
    decoder: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: prependScheme, split: true },
    model: { type: 'Unigram', unk_id: unk >= 0 ? unk : 0, vocab: pieces.map((p) => [p.piece, p.score]), byte_fallback: byteFallback },
  };
  return hfTokenizer(json, { ...(eos >= 0 ? { eos_token: '</s>' } : {}), ...(unk >= 0 ? { unk_token: pieces[unk]!.piece } : {}) }, file);
}

/** SentencePiece's normalization as `tokenizer.json` normalizers: NFKC for the *nfkc rules, then its whitespace rules. */
function unigramNormalizers(spm: SentencePieceModel): object[] {
  return [
    ...(/nfkc/i.test(spm.normalizer) ? [{ type: 'NFKC' }] : []),
    ...(spm.removeExtraWhitespaces
      ? [{ type: 'Strip', strip_left: true, strip_right: true }, { type: 'Replace', pattern: { Regex: ' {2,}' }, content: ' ' }]
      : []),
  ];
}
