import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { ModelFormatError, createIncrementalDecoder, type StreamDecoder, type Tokenizer } from '@kvt/core';

/**
 * A Hugging Face `tokenizer.json` (+ `tokenizer_config.json`), run by `@huggingface/tokenizers` (the tokenizer library
 * transformers.js uses). Special ids come from the config's token strings.
 *
 * @example
 * ```ts
 * const tokenizer = hfTokenizer(JSON.parse(tokenizerJson), JSON.parse(tokenizerConfigJson), 'tokenizer.json');
 * tokenizer.encode('Where is the train station?'); // [..., eos]
 * ```
 */
export function hfTokenizer(json: unknown, config: Record<string, unknown>, file: string): Tokenizer {
  let t: HfTokenizer;
  try {
    t = new HfTokenizer(json as object, config);
  } catch (e) {
    throw new ModelFormatError(file, `not a tokenizer.json this library can read (${(e as Error).message})`);
  }
  const model = (json as { model?: { vocab?: unknown } }).model;
  const vocab = model?.vocab;
  const addedTokens = (json as { added_tokens?: unknown }).added_tokens ?? [];
  if (!Array.isArray(addedTokens) || addedTokens.some((a) => !Number.isInteger((a as { id?: unknown } | null)?.id) || (a as { id: number }).id < 0))
    throw new ModelFormatError(file, 'added_tokens is not a list of tokens with integer ids');
  const added = addedTokens.map((a: { id: number }) => a.id);
  const size = Math.max(
    Array.isArray(vocab) ? vocab.length : vocab && typeof vocab === 'object' ? Object.keys(vocab).length : 0,
    ...added.map((id) => id + 1),
  );
  const idOf = (key: string): number | undefined => {
    const v = config[key];
    const s = typeof v === 'string' ? v : v && typeof v === 'object' ? (v as { content?: string }).content : undefined;
    if (s === undefined) return undefined;
    const id = t.token_to_id(s);
    return typeof id === 'number' ? id : undefined;
  };
  /** The library's own failures (a malformed file it accepted) become this file's typed error. */
  const guarded = <A extends unknown[], R>(what: string, f: (...a: A) => R) => (...a: A): R => {
    try {
      return f(...a);
    } catch (e) {
      if (ModelFormatError.isInstance(e)) throw e;
      throw new ModelFormatError(file, `the tokenizer failed to ${what} (${(e as Error)?.message ?? String(e)}); the file is malformed`);
    }
  };
  const [bos, eos, pad, unk] = ['bos_token', 'eos_token', 'pad_token', 'unk_token'].map(guarded('read its special tokens', idOf));
  const decode = guarded('decode', (ids: readonly number[], skip = true) => (ids.length === 0 ? '' : t.decode([...ids], { skip_special_tokens: skip })));
  const encode = guarded('encode', (text: string, add: boolean) => t.encode(text, { add_special_tokens: add }).ids);
  // a tokenizer that cannot encode and decode a short text is a broken file: say so at load, not mid-generation
  decode(encode('Hello, world! 1 2', true));
  return {
    vocabSize: size,
    specialTokens: {
      ...(bos !== undefined ? { bos } : {}),
      ...(eos !== undefined ? { eos } : {}),
      ...(pad !== undefined ? { pad } : {}),
      ...(unk !== undefined ? { unk } : {}),
    },
    encode: (text, options) => encode(text, options?.addSpecialTokens ?? true),
    decode: (ids, options) => decode(ids, options?.skipSpecialTokens ?? true),
    createStreamDecoder: (options): StreamDecoder =>
      createIncrementalDecoder((ids) => decode(ids, options?.skipSpecialTokens ?? true), options?.prefix),
  };
}
