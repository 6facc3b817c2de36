import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../errors.js';
import { createToyDecoderModel } from '../testing.js';
import { generate } from './generate.js';
import { GENERATE_OPTIONS, TRANSLATE_OPTIONS, suggestOption } from './option-names.js';

describe('unknown option names', () => {
  it('suggest the option meant: snake_case, other libraries\' names, typos', () => {
    const cases: [string, string][] = [
      ['max_new_tokens', 'maxNewTokens'],
      ['maxTokens', 'maxNewTokens'],
      ['max_tokens', 'maxNewTokens'],
      ['temprature', 'temperature'],
      ['num_beams', 'numBeams'],
      ['beams', 'numBeams'],
      ['top_p', 'topP'],
      ['TopK', 'topK'],
      ['repetition_penalty', 'repetitionPenalty'],
      ['stop', 'stopStrings'],
      ['stopTokenId', 'stopTokenIds'],
    ];
    for (const [given, meant] of cases) expect(suggestOption(given, GENERATE_OPTIONS), given).toBe(meant);
    expect(suggestOption('source_ids', TRANSLATE_OPTIONS)).toBe('sourceIds');
    expect(suggestOption('banana', GENERATE_OPTIONS)).toBeUndefined();
  });

  it('are typed errors before any compute, naming the option and the fix; undefined values pass', async () => {
    const model = createToyDecoderModel({ vocabSize: 11, seed: 1 });
    for (const [key, meant] of [['max_new_tokens', 'maxNewTokens'], ['maxTokens', 'maxNewTokens'], ['temprature', 'temperature'], ['num_beams', 'numBeams'], ['beams', 'numBeams']]) {
      const err = await generate(model, { inputIds: [1, 2], [key!]: 3 } as never).catch((e: unknown) => e);
      expect(InvalidOptionError.isInstance(err), key).toBe(true);
      expect((err as InvalidOptionError).option).toBe(key);
      expect((err as Error).message).toContain(`did you mean '${meant}'`);
    }
    const err = await generate(model, { inputIds: [1, 2], banana: 1 } as never).catch((e: unknown) => e);
    expect((err as Error).message).toContain('maxNewTokens');
    expect(model.calls).toHaveLength(0); // nothing ran
    const ok = await generate(model, { inputIds: [1, 2], maxNewTokens: 2, extra: undefined } as never);
    expect(ok.sequences[0]!.tokens).toHaveLength(2);
  });
});
