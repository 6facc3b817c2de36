import * as tf from '@tensorflow/tfjs-core';
import '@kvt/backend-wasm';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { generate, translate } from '@kvt/core';
import { loadModel } from '@kvt/loaders';
import { modelFiles } from './index.js';

const FIXTURES = process.env.KVT_FIXTURES ?? join(modelFiles.path, '../../../../shared/fixtures');

setFlagsFromString('--expose_gc');
const gc = runInNewContext('gc') as () => void;
const heapAfterGc = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
};

// Many calls in one process leave nothing behind: no tensor, no growth of the JS heap (an engine that keeps a
// record per kernel call, as tfjs does under its test flag, grows by megabytes here).
describe('soak: 300 generations and 50 beam-4 translations in one process (wasm)', () => {
  it('the JS heap after GC grows by less than 5 MB and no tensor is left', async () => {
    await tf.setBackend('wasm');
    const stories = await loadModel(join(FIXTURES, 'stories260K', 'stories260K.bin'));
    const enEs = await loadModel(modelFiles.path);
    try {
      if (stories.kind !== 'decoder-only' || enEs.kind !== 'encoder-decoder') throw new Error('unexpected model kinds');
      const prompts = ['Once upon a time', 'Lily saw a big dog', 'The sun was hot', 'Tom had a red ball'];
      const sentences = ['Where is the train station?', 'I like green tea.', 'She is reading a book.', 'We will go tomorrow.', 'Good morning!'];
      const run = async (i: number) => {
        await generate(stories.model, { prompt: prompts[i % prompts.length]!, tokenizer: stories.tokenizer!, maxNewTokens: 24, temperature: i % 2 ? 0.8 : 0, seed: i, stopStrings: ['.'] });
        if (i % 6 === 0) await translate(enEs.model, { text: sentences[(i / 6) % sentences.length]!, tokenizer: enEs.tokenizer!, numBeams: 4, maxNewTokens: 32 });
      };
      for (let i = 0; i < 12; i++) await run(i); // warm up: lazily built tables and compiled code
      const tensors = tf.memory().numTensors;
      const heap = heapAfterGc();
      for (let i = 12; i < 312; i++) await run(i); // 300 generations, 50 of them with a beam-4 translation
      const grown = heapAfterGc() - heap;
      console.log(`JS heap after 300 generations and 50 translations: ${(grown / 1e6).toFixed(2)} MB more`);
      expect(grown).toBeLessThan(5e6);
      expect(tf.memory().numTensors).toBe(tensors);
    } finally {
      stories.dispose();
      enEs.dispose();
    }
  });
});
