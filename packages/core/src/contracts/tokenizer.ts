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
 * A stream decoder for any tokenizer whose `decode` is local (a token's text depends on the token and the one before
 * it: SentencePiece's leading space, byte-fallback pieces, WordPiece's `##`). Each `push` decodes a short window, not
 * the whole sequence: the tokens since the last emitted text plus the one before them (`prefix`..`read`), and emits
 * the part that the new tokens add. Text that ends in an incomplete UTF-8 character (U+FFFD) is held back until the
 * character completes. Amortized O(1) per token; the concatenated output equals `decode(ids)` of the whole sequence
 * (after `prefix`).
 *
 * @example
 * ```ts
 * const decoder = createIncrementalDecoder((ids) => tokenizer.decode(ids));
 * for (const id of ids) process.stdout.write(decoder.push(id));
 * process.stdout.write(decoder.flush());
 * ```
 */
export function createIncrementalDecoder(
  decode: (ids: readonly number[]) => string,
  prefix: readonly number[] = [],
): StreamDecoder {
  // ids[start, read) were decoded and emitted already; ids[read, end) are new or held back
  let ids: number[] = prefix.slice(-1);
  let start = 0;
  let read = ids.length;
  const advance = (): string => {
    const window = ids.slice(start);
    const before = read > start ? decode(window.slice(0, read - start)) : '';
    const text = decode(window);
    if (text.endsWith('\uFFFD') || text.length <= before.length) return '';
    // compact: keep only the last emitted token as context for the next window
    ids = ids.slice(ids.length - 1);
    start = 0;
    read = ids.length;
    return text.slice(before.length);
  };
  return {
    push(id: number): string {
      ids.push(id);
      return advance();
    },
    flush(): string {
      if (read === ids.length) return '';
      const window = ids.slice(start);
      const before = read > start ? decode(window.slice(0, read - start)) : '';
      const text = decode(window);
      ids = ids.slice(ids.length - 1);
      start = 0;
      read = ids.length;
      return text.slice(before.length);
    },
  };
}
