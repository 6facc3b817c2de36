import * as tf from '@tensorflow/tfjs-core';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { translate } from '@kvt/core';
import { loadModel } from '@kvt/loaders';
import { modelFiles } from './index.js';

interface Case {
  source: string;
  sourceIds: number[];
  greedyIds: number[];
  greedyText: string;
  decoderInput: number[];
  logits: number[][];
}
const reference = JSON.parse(readFileSync(new URL('../test-data/reference-outputs.json', import.meta.url), 'utf8')) as {
  framework: string;
  step: number;
  cases: Case[];
};

// PyTorch's outputs (the training framework, float16 weights rounded to float32) reproduced by kvt's own loaders.
for (const backend of ['cpu', 'wasm'] as const) {
  describe(`the default en-es model against ${reference.framework} (${backend})`, () => {
    it('encodes like SentencePiece, gives the same greedy tokens, and teacher-forced logits within 1e-3', async () => {
      await import(backend === 'cpu' ? '@kvt/backend-cpu' : '@kvt/backend-wasm');
      await tf.setBackend(backend);
      const before = tf.memory().numTensors;
      const loaded = await loadModel(modelFiles.path);
      try {
        if (loaded.kind !== 'encoder-decoder' || !loaded.tokenizer) throw new Error('expected a translation model with a tokenizer');
        expect(loaded.format).toBe('huggingface');
        // with no options, its generation_config.json applies: 4 beams, max_length 128 (127 new tokens after the start)
        const defaults = await translate(loaded.model, { sourceIds: reference.cases[0]!.sourceIds });
        expect(defaults.config).toMatchObject({ numBeams: 4, maxNewTokens: 127, forcedEosTokenId: 0, badWordsIds: [[2]] });
        for (const c of reference.cases) {
          expect(loaded.tokenizer.encode(c.source)).toEqual(c.sourceIds);
          const r = await translate(loaded.model, { sourceIds: c.sourceIds, maxNewTokens: 64, numBeams: 1 }); // the reference is greedy
          const tokens = r.translations[0]!.tokens;
          // PyTorch's greedy stops before </s> (id 0); kvt keeps the stop token
          expect(tokens.filter((t) => t !== 0)).toEqual(c.greedyIds);
          expect(loaded.tokenizer.decode(tokens)).toBe(c.greedyText);
          const state = await loaded.model.encode([c.sourceIds]);
          const logits = await loaded.model.decode([c.decoderInput], state, null, { logits: 'all' });
          state.dispose();
          c.logits.forEach((row, p) => {
            const got = logits.data.subarray(p * logits.vocabSize, (p + 1) * logits.vocabSize);
            let diff = 0;
            row.forEach((v, i) => (diff = Math.max(diff, Math.abs(v - got[i]!))));
            expect(diff, `${c.source} position ${p}`).toBeLessThanOrEqual(1e-3);
          });
        }
      } finally {
        loaded.dispose();
      }
      expect(tf.memory().numTensors).toBe(before);
    });
  });
}
