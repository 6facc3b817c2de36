/**
 * A session saved on one backend continues on another: stories260K (the real fixture) saved from tfjs's cpu backend
 * with the reference cache, restored into the wasm backend's cache, continues exactly as the cpu session does.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { describe, expect, it } from 'vitest';
import { createSession, type DecoderOnlyModel } from '@kvt/core';
import { loadModel } from '@kvt/loaders';
import { restoreSession, saveSession } from '@kvt/models';
import { activate } from './index.js';

const fixtures = process.env.KVT_FIXTURES ?? resolve(dirname(fileURLToPath(import.meta.url)), '../../../../shared/fixtures');
const stories = join(fixtures, 'stories260K');

describe.skipIf(!existsSync(join(stories, 'stories260K.bin')))('session state across backends', () => {
  it('stories260K: saved on cpu (concat cache), restored on wasm (its own cache), the next turn equals the cpu session\'s', async () => {
    const files = { 'stories260K.bin': readFileSync(join(stories, 'stories260K.bin')), 'tok512.bin': readFileSync(join(stories, 'tok512.bin')) };
    await tf.setBackend('cpu');
    const onCpu = await loadModel(files);
    const session = createSession(onCpu.model as DecoderOnlyModel, { tokenizer: onCpu.tokenizer!, cache: 'concat' });
    await session.generate({ prompt: 'Once upon a time', maxNewTokens: 30 });
    const bytes = await saveSession(session);
    const want = await session.generate({ prompt: ' The dog', maxNewTokens: 30 });
    session.dispose();
    onCpu.model.dispose();

    await activate();
    const onWasm = await loadModel(files);
    const restored = await restoreSession(onWasm.model as DecoderOnlyModel, bytes, { tokenizer: onWasm.tokenizer! });
    try {
      const got = await restored.generate({ prompt: ' The dog', maxNewTokens: 30 });
      expect(got.prefillTokens).toBe(want.prefillTokens);
      expect(got.sequences[0]!.tokens).toEqual(want.sequences[0]!.tokens);
      expect(got.sequences[0]!.text).toBe(want.sequences[0]!.text);
    } finally {
      restored.dispose();
      onWasm.model.dispose();
    }
  });
});
