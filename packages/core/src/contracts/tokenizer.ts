/**
 * The tokenizer contract. Implementations live in `@kvt/loaders` (llama2.c, SentencePiece-style GGUF vocabularies,
 * Hugging Face `tokenizer.json`, CTranslate2 vocabularies).
 *
 * @example
 * ```ts
 * const ids = tokenizer.encode('Once upon a time'); // [1, 403, 407, 261, 378]
 * const decoder = tokenizer.createStreamDecoder();
 * for (const id of generated) process.stdout.write(decoder.push(id));
 * process.stdout.write(decoder.flush());
 * ```
 */
export interface Tokenizer {
  readonly vocabSize: number;
  readonly specialTokens: { readonly bos?: number; readonly eos?: number; readonly pad?: number; readonly unk?: number };
  /** Text to ids, with the special tokens the model expects (BOS for llama2.c, `</s>` for Marian sources). */
  encode(text: string, options?: { readonly addSpecialTokens?: boolean }): number[];
  /** Ids to text. Special tokens are dropped unless `skipSpecialTokens` is false. */
  decode(ids: readonly number[], options?: { readonly skipSpecialTokens?: boolean }): string;
  /** A decoder that turns ids into text as they come, holding back incomplete characters. */
  createStreamDecoder(options?: { readonly skipSpecialTokens?: boolean; readonly prefix?: readonly number[] }): StreamDecoder;
}

/** Incremental decoding for streams: `push` returns only the new text. */
export interface StreamDecoder {
  push(id: number): string;
  /** Whatever text is still held back. */
  flush(): string;
}

/**
 * A stream decoder for any tokenizer: decodes the whole sequence each time and emits the new suffix, holding back
 * text that ends in an incomplete UTF-8 character (U+FFFD).
 */
export function createDiffStreamDecoder(
  decode: (ids: readonly number[]) => string,
  prefix: readonly number[] = [],
): StreamDecoder {
  const ids: number[] = [...prefix];
  let emitted = decode(ids).length;
  return {
    push(id: number): string {
      ids.push(id);
      const text = decode(ids);
      if (text.endsWith('\uFFFD')) return '';
      const out = text.slice(emitted);
      emitted = text.length;
      return out;
    },
    flush(): string {
      const text = decode(ids);
      const out = text.slice(emitted);
      emitted = text.length;
      return out;
    },
  };
}
