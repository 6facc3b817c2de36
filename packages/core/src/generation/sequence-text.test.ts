import { describe, expect, it } from 'vitest';
import { createIncrementalDecoder } from '../contracts/tokenizer.js';
import { SequenceText } from './sequence-text.js';

// A toy SentencePiece-like vocabulary: '▁' is a space, a text's leading space is dropped, " ," cleans up to ",".
const PIECES = ['▁the', '▁cat', '▁', ',', '.', 'sat', '\n', '▁on', '▁mat', 'e'];
const decode = (ids: readonly number[]) =>
  ids.map((i) => PIECES[i]!).join('').replaceAll('▁', ' ').replace(/^ /, '').replaceAll(' ,', ',');

describe('incremental detokenization', () => {
  it('equals the full decode, with the clean-up across tokens', () => {
    const ids = [0, 1, 2, 3, 7, 0, 8, 4, 6, 6, 0, 2, 2, 3, 5];
    const d = createIncrementalDecoder(decode);
    let streamed = ids.map((i) => d.push(i)).join('');
    streamed += d.flush();
    expect(streamed).toBe(decode(ids));
  });

  it('decodes a window, not the whole sequence: O(1) amortized per token', () => {
    let decoded = 0;
    const counting = (ids: readonly number[]) => ((decoded += ids.length), decode(ids));
    const d = createIncrementalDecoder(counting);
    const n = 5000;
    let text = '';
    for (let k = 0; k < n; k++) text += d.push(k % PIECES.length);
    text += d.flush();
    expect(text).toBe(decode(Array.from({ length: n }, (_, k) => k % PIECES.length)));
    expect(decoded / n, 'tokens decoded per pushed token').toBeLessThan(20);
  });

  it('starts after a prefix', () => {
    const d = createIncrementalDecoder(decode, [0, 1]);
    const out = [5, 7, 0, 8].map((i) => d.push(i)).join('') + d.flush();
    expect(decode([0, 1]) + out).toBe(decode([0, 1, 5, 7, 0, 8]));
  });
});

describe('SequenceText: stop strings on the new text only, held back while they may begin', () => {
  const run = (ids: number[], stops: string[]) => {
    const t = new SequenceText(createIncrementalDecoder(decode), stops);
    const pieces: string[] = [];
    let stoppedAt = -1;
    for (let k = 0; k < ids.length; k++) {
      const { piece, stopped } = t.put(ids[k]!);
      pieces.push(piece);
      if (stopped) {
        stoppedAt = k;
        break;
      }
    }
    if (stoppedAt < 0) pieces.push(t.end());
    return { pieces, text: t.text, stoppedAt };
  };

  it('cuts before the first stop string, never showing any of it', () => {
    const r = run([0, 1, 5, 7, 0, 8], ['on the']);
    expect(r.text).toBe('the catsat ');
    expect(r.pieces.join('')).toBe(r.text);
    expect(r.stoppedAt).toBe(4); // '▁the' completes "on the"
    expect(r.pieces.some((p) => p.includes('on'))).toBe(false); // " on" was held back, then cut
  });

  it('releases held text that turns out not to be a stop string', () => {
    const r = run([0, 1, 7, 8, 4], ['on the']);
    expect(r.stoppedAt).toBe(-1);
    expect(r.text).toBe(decode([0, 1, 7, 8, 4]));
    expect(r.pieces.join('')).toBe(r.text);
  });

  it('stops on a whitespace stop string at once, though the decoder holds trailing whitespace back', () => {
    const r = run([0, 1, 6, 6, 0, 1], ['\n\n']);
    expect(r.stoppedAt).toBe(3);
    expect(r.text).toBe('the cat');
  });
});
