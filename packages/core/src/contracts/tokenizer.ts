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
  /**
   * Text decoded past what `push` returned, held back because a later token may still change it (trailing
   * whitespace that a clean-up rule may drop, an incomplete character).
   */
  peek(): string;
  /** Whatever text is still held back. */
  flush(): string;
}

/** Tokens kept before the new ones when decoding a window: enough that a decoder's rules at the start of a text
 * (SentencePiece's stripped leading space) see what the full decode sees. */
const CONTEXT_TOKENS = 4;

/**
 * A stream decoder for any tokenizer whose `decode` is local (a token's text depends on the few tokens around it:
 * SentencePiece's leading space, byte-fallback pieces, clean-up of a space before punctuation). Each `push` decodes a
 * short window, not the whole sequence: a few tokens already shown and the new ones, and emits the part the new
 * tokens add. Trailing whitespace (which a clean-up rule may still drop, as in " ," → ",") and an incomplete UTF-8
 * character (U+FFFD) are held back until a later token settles them. Amortized O(1) per token; the concatenated
 * output equals `decode(ids)` of the whole sequence (after `prefix`).
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
  // the window: ids whose decoded text's first `shown` characters were emitted already (or belong to the prefix)
  let ids: number[] = prefix.slice(-CONTEXT_TOKENS);
  let text = decode(ids);
  let shown = text.length;
  /** Drops window tokens from the front while what stays decodes to a suffix of what was shown. */
  const compact = () => {
    if (ids.length <= CONTEXT_TOKENS) return;
    const kept = ids.slice(-CONTEXT_TOKENS);
    const keptText = decode(kept);
    const tail = text.length - shown; // held back, at the end of both texts
    const keptShown = keptText.length - tail;
    if (keptShown < 0 || keptText.slice(keptShown) !== text.slice(shown) || !text.slice(0, shown).endsWith(keptText.slice(0, keptShown))) return;
    ids = kept;
    text = keptText;
    shown = keptShown;
  };
  return {
    push(id: number): string {
      ids.push(id);
      text = decode(ids);
      if (text.endsWith('\uFFFD')) return '';
      const end = text.trimEnd().length;
      if (end <= shown) return '';
      const out = text.slice(shown, end);
      shown = end;
      compact();
      return out;
    },
    peek(): string {
      return text.slice(shown);
    },
    flush(): string {
      const out = text.slice(shown);
      shown = text.length;
      compact();
      return out;
    },
  };
}
