import { ModelFormatError, UnsupportedError, createIncrementalDecoder, type StreamDecoder, type Tokenizer } from '@kvt/core';
import { decodeUtf8 } from '../bytes/binary-reader.js';
import { readSentencePieceModel, sentencePieceTokenizer } from './sentencepiece-model.js';

/** The files of Marian's own tokenizer, as opus-mt folders ship them (no `tokenizer.json`). */
export interface MarianTokenizerFiles {
  /** `source.spm`: the SentencePiece model that splits source text into pieces. */
  readonly sourceSpm: Uint8Array;
  /** `vocab.json`: `{ piece: id }`, the model's ids for the pieces of both sides. */
  readonly vocab: Uint8Array;
  /** `tokenizer_config.json`, parsed (names `eos_token`, `unk_token`, `pad_token`); optional. */
  readonly config?: Record<string, unknown>;
}

const SPACE = '\u2581';
const LANGUAGE_CODE = />>.+<</;

/**
 * Marian's tokenizer from `source.spm` + `vocab.json`, as transformers' `MarianTokenizer` runs it: the source
 * SentencePiece model splits the text into pieces, `vocab.json` gives each piece its model id (pieces it lacks become
 * `<unk>`), a leading language code such as `>>es<<` is its own token, and `</s>` ends the source. Decoding maps ids
 * back to pieces and joins them as SentencePiece does (`▁` is a space). One object serves both sides: Marian models
 * share `vocab.json` between source and target.
 *
 * A character the source model does not know is `<unk>` here even when `vocab.json` happens to hold it as a target
 * piece (transformers looks such a character up by its surface form).
 *
 * @example
 * ```ts
 * const tokenizer = marianTokenizer({ sourceSpm: await read('source.spm'), vocab: await read('vocab.json') });
 * tokenizer.encode('Where is the train station?'); // [..., 0]  (0 = </s>)
 * ```
 */
export function marianTokenizer(files: MarianTokenizerFiles): Tokenizer {
  if (files.config?.separate_vocabs === true)
    throw new UnsupportedError(
      'tokenizer_config.json: separate_vocabs (a target_vocab.json beside vocab.json) is not supported; give the folder a tokenizer.json for each side',
    );
  const spm = readSentencePieceModel(files.sourceSpm, 'source.spm');
  const sourceSpm = sentencePieceTokenizer(spm, 'source.spm');
  const idOfPiece = parseVocab(files.vocab);
  const pieceOfId: string[] = [];
  for (const [piece, id] of idOfPiece) pieceOfId[id] = piece;
  const token = (key: string, fallback: string): number | undefined => {
    const v = files.config?.[key];
    const s = typeof v === 'string' ? v : v && typeof v === 'object' ? (v as { content?: unknown }).content : undefined;
    return idOfPiece.get(typeof s === 'string' ? s : fallback);
  };
  const eos = token('eos_token', '</s>');
  const unk = token('unk_token', '<unk>');
  const pad = token('pad_token', '<pad>');
  if (unk === undefined) throw new ModelFormatError('vocab.json', 'has no <unk> piece; Marian vocabularies map unknown pieces to it');
  const special = new Set([eos, unk, pad].filter((id): id is number => id !== undefined));

  const decodePieces = (pieces: string[]) => pieces.join('').replaceAll(SPACE, ' ').replace(/^ /, '');
  const decode = (ids: readonly number[], skip: boolean): string => {
    // transformers' convert_tokens_to_string: special tokens are kept verbatim between decoded runs
    let out = '';
    let run: string[] = [];
    for (const id of ids) {
      const piece = pieceOfId[id];
      if (piece === undefined) continue;
      if (special.has(id)) {
        if (skip) continue;
        out += decodePieces(run) + piece + ' ';
        run = [];
      } else run.push(piece);
    }
    return (out + decodePieces(run)).replaceAll(SPACE, ' ').trim();
  };

  return {
    vocabSize: pieceOfId.length,
    specialTokens: {
      ...(eos !== undefined ? { eos } : {}),
      ...(pad !== undefined ? { pad } : {}),
      unk,
    },
    encode(text, options) {
      const code = LANGUAGE_CODE.exec(text);
      const ids: number[] = [];
      if (code && code.index === 0) ids.push(idOfPiece.get(code[0]) ?? unk);
      const rest = text.replace(new RegExp(LANGUAGE_CODE, 'g'), '');
      for (const id of sourceSpm.encode(rest, { addSpecialTokens: false })) {
        const p = spm.pieces[id];
        ids.push(p && p.type !== 2 ? (idOfPiece.get(p.piece) ?? unk) : unk);
      }
      if ((options?.addSpecialTokens ?? true) && eos !== undefined) ids.push(eos);
      return ids;
    },
    decode: (ids, options) => decode(ids, options?.skipSpecialTokens ?? true),
    createStreamDecoder: (options): StreamDecoder =>
      createIncrementalDecoder((ids) => decode(ids, options?.skipSpecialTokens ?? true), options?.prefix),
  };
}

/** `vocab.json` → piece → id, checked: an object of distinct non-negative integer ids. */
function parseVocab(bytes: Uint8Array): Map<string, number> {
  let v: unknown;
  try {
    v = JSON.parse(decodeUtf8(bytes, 'vocab.json', 'JSON'));
  } catch (e) {
    if (ModelFormatError.isInstance(e)) throw e;
    throw new ModelFormatError('vocab.json', 'is not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ModelFormatError('vocab.json', 'is not an object of piece → id');
  const map = new Map<string, number>();
  const seen = new Set<number>();
  for (const [piece, id] of Object.entries(v)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 1e7)
      throw new ModelFormatError('vocab.json', `the id of ${JSON.stringify(piece)} is ${JSON.stringify(id)}, not a non-negative integer`);
    if (seen.has(id)) throw new ModelFormatError('vocab.json', `id ${id} is given to two pieces`);
    seen.add(id);
    map.set(piece, id);
  }
  if (map.size === 0) throw new ModelFormatError('vocab.json', 'is empty');
  return map;
}
