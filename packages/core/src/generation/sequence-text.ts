import type { StreamDecoder } from '../contracts/tokenizer.js';

/**
 * One sequence's streamed text: each token's text from an incremental decoder (amortized O(1) per token), stop
 * strings matched on the new text only, and text held back while it could still be the start of a stop string, so
 * the streamed text never shows what the final text cuts. The pieces `put` and `end` return, joined, are the final
 * text.
 *
 * @example
 * ```ts
 * const text = new SequenceText(tokenizer.createStreamDecoder(), ['\n\n']);
 * for (const id of ids) { const { piece, stopped } = text.put(id); write(piece); if (stopped) break; }
 * write(text.end());
 * ```
 */
export class SequenceText {
  /** The text emitted so far. */
  private emitted = '';
  /** Decoded text not emitted yet: it may be the start of a stop string. */
  private held = '';
  private stopped = false;
  private readonly longestStop: number;

  constructor(
    private readonly decoder: StreamDecoder,
    private readonly stopStrings: readonly string[] = [],
  ) {
    this.longestStop = Math.max(0, ...stopStrings.map((s) => s.length));
  }

  /** The text emitted so far. */
  get text(): string {
    return this.emitted;
  }

  /**
   * Decodes one more token. Returns the text that can be shown now, and whether a stop string was completed (then
   * the text before it is all there is, and `end` adds nothing). Stop strings are looked for in the new text and in
   * what the decoder still holds back (trailing whitespace), so "\n\n" stops at once.
   */
  put(token: number): { readonly piece: string; readonly stopped: boolean } {
    if (this.stopped) return { piece: '', stopped: true };
    const fresh = this.decoder.push(token);
    const pending = this.held + fresh;
    if (this.longestStop === 0) return { piece: this.emit(pending, ''), stopped: false };
    const ahead = this.decoder.peek();
    const at = this.firstStop(pending + ahead);
    if (at >= 0) {
      this.stopped = true;
      return { piece: this.emit((pending + ahead).slice(0, at), ''), stopped: true };
    }
    // hold back the end of `pending` that, with what comes after, could still begin a stop string
    const keep = Math.max(0, this.heldSuffix(pending + ahead) - ahead.length);
    return { piece: this.emit(pending.slice(0, pending.length - keep), pending.slice(pending.length - keep)), stopped: false };
  }

  /** The text still held back (the sequence ended some other way): what follows the last `put` piece. */
  end(): string {
    if (this.stopped) return '';
    this.stopped = true;
    const rest = this.held + this.decoder.flush();
    const at = this.firstStop(rest);
    return this.emit(at >= 0 ? rest.slice(0, at) : rest, '');
  }

  /** Where the first stop string begins in `text` (a stop string can only begin in text not yet emitted), or −1. */
  private firstStop(text: string): number {
    let at = -1;
    for (const s of this.stopStrings) {
      const i = text.indexOf(s);
      if (i >= 0 && (at < 0 || i < at)) at = i;
    }
    return at;
  }

  private emit(piece: string, held: string): string {
    this.emitted += piece;
    this.held = held;
    return piece;
  }

  /** Length of the longest suffix of `text` that is a proper prefix of a stop string. */
  private heldSuffix(text: string): number {
    for (let k = Math.min(this.longestStop - 1, text.length); k > 0; k--) {
      const tail = text.slice(text.length - k);
      if (this.stopStrings.some((s) => s.length > k && s.startsWith(tail))) return k;
    }
    return 0;
  }
}
