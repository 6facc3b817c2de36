import { BinaryReader } from '../bytes/binary-reader.js';
import { ScoreBpeTokenizer } from './score-bpe.js';

/**
 * Parses a llama2.c tokenizer (`tok*.bin`): int32 max_token_length, then per token float32 score, int32 length and
 * the bytes. `vocabSize` comes from the checkpoint (the file does not say it); every count is checked against the
 * bytes left before anything is allocated.
 *
 * @example
 * ```ts
 * const tokenizer = parseLlama2cTokenizer(bytes, 'tok512.bin', 512);
 * ```
 */
export function parseLlama2cTokenizer(bytes: Uint8Array, file: string, vocabSize: number): ScoreBpeTokenizer {
  const r = new BinaryReader(bytes, file);
  const maxLen = r.i32('max_token_length');
  if (maxLen <= 0 || maxLen > 1 << 16) r.fail(`max_token_length ${maxLen} is not plausible`);
  if (vocabSize * 8 > r.remaining) r.fail(`${vocabSize} tokens need at least ${vocabSize * 8} more bytes; the file has ${r.remaining}`);
  const pieces: string[] = [];
  const scores = new Float32Array(vocabSize);
  for (let i = 0; i < vocabSize; i++) {
    scores[i] = r.f32(`score of token ${i}`);
    const len = r.i32(`length of token ${i}`);
    if (len < 0 || len > maxLen) r.fail(`token ${i} has length ${len}, beyond max_token_length ${maxLen}`);
    pieces.push(new TextDecoder().decode(r.take(len, `bytes of token ${i}`)));
  }
  if (r.remaining !== 0) r.fail(`${r.remaining} bytes follow the ${vocabSize} tokens; the vocabulary size disagrees with the checkpoint`);
  return new ScoreBpeTokenizer({
    pieces,
    scores,
    spaceSymbol: ' ',
    ...(pieces[3] === '<0x00>' ? { byteFallbackStart: 3 } : {}),
    unk: 0,
    bos: 1,
    eos: 2,
    addPrefixSpace: true,
  });
}
