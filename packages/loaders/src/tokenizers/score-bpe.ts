import { createIncrementalDecoder, type StreamDecoder, type Tokenizer } from '@kvt/core';

export interface ScoreBpeOptions {
  /** Token strings by id. */
  readonly pieces: readonly string[];
  /** Merge priority by id (higher merges first). */
  readonly scores: ArrayLike<number>;
  /** What a space is in the pieces: ' ' (llama2.c) or '▁' (SentencePiece, GGUF). */
  readonly spaceSymbol: ' ' | '\u2581';
  /** Id of the first byte-fallback token `<0x00>` (llama2.c and SentencePiece: 3), if any. */
  readonly byteFallbackStart?: number;
  readonly bos?: number;
  readonly eos?: number;
  readonly unk?: number;
  /** Ids decoded as nothing when special tokens are skipped. */
  readonly specialIds?: readonly number[];
  /** Prepend BOS on encode (default true when a BOS exists). */
  readonly addBos?: boolean;
  /** Prepend a space before the text (llama2.c and SentencePiece do). */
  readonly addPrefixSpace?: boolean;
}

/**
 * SentencePiece-style BPE by merge scores, exactly as llama2.c's `encode` (and SentencePiece's BPE) does it: start
 * from one token per character (bytes for characters not in the vocabulary), then repeatedly merge the adjacent
 * pair whose merged piece has the highest score (leftmost on ties).
 *
 * @example
 * ```ts
 * const tok = parseLlama2cTokenizer(bytes, 'tok512.bin');
 * tok.encode('Once upon a time'); // [1, 403, 407, 261, 378]
 * ```
 */
export class ScoreBpeTokenizer implements Tokenizer {
  private readonly lookup = new Map<string, number>();
  private readonly special: Set<number>;
  readonly specialTokens: Tokenizer['specialTokens'];

  constructor(private readonly o: ScoreBpeOptions) {
    o.pieces.forEach((p, i) => {
      if (!this.lookup.has(p)) this.lookup.set(p, i);
    });
    this.special = new Set(o.specialIds ?? [o.bos, o.eos, o.unk].filter((x): x is number => x !== undefined));
    this.specialTokens = {
      ...(o.bos !== undefined ? { bos: o.bos } : {}),
      ...(o.eos !== undefined ? { eos: o.eos } : {}),
      ...(o.unk !== undefined ? { unk: o.unk } : {}),
    };
  }

  get vocabSize(): number {
    return this.o.pieces.length;
  }

  /**
   * The vocabulary as SentencePiece (and GGUF's `tokenizer.ggml.*`) writes it: pieces with spaces as ▁, scores,
   * the special ids and the encoding settings.
   *
   * @example
   * ```ts
   * parseLlama2cTokenizer(bytes, 'tok512.bin', 512).describe().pieces[403]; // '▁Once'
   * ```
   */
  describe(): Required<Pick<ScoreBpeOptions, 'pieces' | 'scores' | 'specialIds' | 'addBos' | 'addPrefixSpace'>> &
    Pick<ScoreBpeOptions, 'bos' | 'eos' | 'unk' | 'byteFallbackStart'> {
    const o = this.o;
    return {
      pieces: o.spaceSymbol === ' ' ? o.pieces.map((p) => p.replaceAll(' ', '\u2581')) : o.pieces,
      scores: o.scores,
      specialIds: [...this.special],
      addBos: o.addBos ?? true,
      addPrefixSpace: o.addPrefixSpace ?? true,
      ...(o.bos !== undefined ? { bos: o.bos } : {}),
      ...(o.eos !== undefined ? { eos: o.eos } : {}),
      ...(o.unk !== undefined ? { unk: o.unk } : {}),
      ...(o.byteFallbackStart !== undefined ? { byteFallbackStart: o.byteFallbackStart } : {}),
    };
  }

  encode(text: string, options?: { addSpecialTokens?: boolean }): number[] {
    const o = this.o;
    const ids: number[] = [];
    if ((options?.addSpecialTokens ?? true) && (o.addBos ?? true) && o.bos !== undefined) ids.push(o.bos);
    if (text.length === 0) return ids;
    let s = text;
    if (o.spaceSymbol !== ' ') s = s.replace(/ /g, o.spaceSymbol);
    if (o.addPrefixSpace ?? true) s = o.spaceSymbol + s;
    const tokens: number[] = [];
    for (const ch of s) {
      const id = this.lookup.get(ch);
      if (id !== undefined) tokens.push(id);
      else if (o.byteFallbackStart !== undefined) for (const b of new TextEncoder().encode(ch)) tokens.push(o.byteFallbackStart + b);
      else if (o.unk !== undefined) tokens.push(o.unk);
    }
    // greedy merges by score
    for (;;) {
      let best = -Infinity;
      let bestId = -1;
      let bestAt = -1;
      for (let i = 0; i + 1 < tokens.length; i++) {
        const merged = this.lookup.get(o.pieces[tokens[i]!]! + o.pieces[tokens[i + 1]!]!);
        if (merged !== undefined && o.scores[merged]! > best) {
          best = o.scores[merged]!;
          bestId = merged;
          bestAt = i;
        }
      }
      if (bestAt < 0) break;
      tokens.splice(bestAt, 2, bestId);
    }
    return ids.concat(tokens);
  }

  decode(ids: readonly number[], options?: { skipSpecialTokens?: boolean }): string {
    const o = this.o;
    const skip = options?.skipSpecialTokens ?? true;
    const bytes: number[] = [];
    const enc = new TextEncoder();
    ids.forEach((id, i) => {
      if (skip && this.special.has(id)) return;
      let piece = o.pieces[id] ?? '';
      const byte = /^<0x([0-9A-Fa-f]{2})>$/.exec(piece);
      if (byte) {
        bytes.push(parseInt(byte[1]!, 16));
        return;
      }
      if (o.spaceSymbol !== ' ') piece = piece.replaceAll(o.spaceSymbol, ' ');
      // the space prepended on encode is not part of the text: drop it after BOS (as llama2.c does)
      if (piece.startsWith(' ') && i > 0 && ids[i - 1] === o.bos) piece = piece.slice(1);
      for (const b of enc.encode(piece)) bytes.push(b);
    });
    return new TextDecoder().decode(Uint8Array.from(bytes));
  }

  createStreamDecoder(options?: { skipSpecialTokens?: boolean; prefix?: readonly number[] }): StreamDecoder {
    return createIncrementalDecoder((ids) => this.decode(ids, options), options?.prefix);
  }
}
