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
  const added = ((json as { added_tokens?: { id: number; content: string }[] }).added_tokens ?? []).map((a) => a.id);
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
  const bos = idOf('bos_token');
  const eos = idOf('eos_token');
  const pad = idOf('pad_token');
  const unk = idOf('unk_token');
  const decode = (ids: readonly number[], skip = true) => (ids.length === 0 ? '' : t.decode([...ids], { skip_special_tokens: skip }));
  return {
    vocabSize: size,
    specialTokens: {
      ...(bos !== undefined ? { bos } : {}),
      ...(eos !== undefined ? { eos } : {}),
      ...(pad !== undefined ? { pad } : {}),
      ...(unk !== undefined ? { unk } : {}),
    },
    encode: (text, options) => t.encode(text, { add_special_tokens: options?.addSpecialTokens ?? true }).ids,
    decode: (ids, options) => decode(ids, options?.skipSpecialTokens ?? true),
    createStreamDecoder: (options): StreamDecoder =>
      createIncrementalDecoder((ids) => decode(ids, options?.skipSpecialTokens ?? true), options?.prefix),
  };
}
