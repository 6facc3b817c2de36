import { ModelFormatError, createIncrementalDecoder, type Tokenizer } from '@kvt/core';

/**
 * A whitespace tokenizer over a vocabulary file (one token a line), as CTranslate2 and OpenNMT models use with
 * pre-tokenized text: `encode` splits on spaces and maps tokens to ids (`<unk>` for unknown ones); `decode` joins
 * with spaces. CTranslate2 appends `<unk>` as the last id when the file lacks it.
 *
 * @example
 * ```ts
 * const source = vocabularyTokenizer(text, 'source_vocabulary.txt', { bos: undefined });
 * source.encode('آ ت ز م و ن'); // 6 ids
 * ```
 */
export function vocabularyTokenizer(text: string, file: string, options: { addEos?: boolean } = {}): Tokenizer {
  const tokens = text.split(/\r?\n/);
  if (tokens[tokens.length - 1] === '') tokens.pop();
  if (tokens.length === 0) throw new ModelFormatError(file, 'the vocabulary is empty');
  if (!tokens.includes('<unk>')) tokens.push('<unk>');
  const ids = new Map<string, number>();
  tokens.forEach((t, i) => {
    if (!ids.has(t)) ids.set(t, i);
  });
  const unk = ids.get('<unk>')!;
  const pad = ids.get('<blank>');
  const bos = ids.get('<s>');
  const eos = ids.get('</s>');
  const special = new Set([unk, pad, bos, eos].filter((x): x is number => x !== undefined));
  const decode = (list: readonly number[], skip = true) =>
    list.filter((id) => !(skip && special.has(id))).map((id) => tokens[id] ?? '<unk>').join(' ');
  return {
    vocabSize: tokens.length,
    specialTokens: {
      unk,
      ...(pad !== undefined ? { pad } : {}),
      ...(bos !== undefined ? { bos } : {}),
      ...(eos !== undefined ? { eos } : {}),
    },
    encode: (s, o) => {
      const out = s.split(/\s+/).filter(Boolean).map((t) => ids.get(t) ?? unk);
      if (options.addEos && (o?.addSpecialTokens ?? true) && eos !== undefined) out.push(eos);
      return out;
    },
    decode: (list, o) => decode(list, o?.skipSpecialTokens ?? true),
    createStreamDecoder: (o) => createIncrementalDecoder((list) => decode(list, o?.skipSpecialTokens ?? true), o?.prefix),
  };
}
