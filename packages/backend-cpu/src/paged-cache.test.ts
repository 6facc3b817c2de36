/** The CPU cache's paged blocks: the shared suite (@kvt/models/testing) on the cpu backend, with stories260K. */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DecoderOnlyModel } from '@kvt/core';
import { loadModel } from '@kvt/loaders';
import { describePagedBlocks } from '@kvt/models/testing';
import { activate } from './index.js';

const fixtures = process.env.KVT_FIXTURES ?? resolve(dirname(fileURLToPath(import.meta.url)), '../../../../shared/fixtures');
const stories = join(fixtures, 'stories260K', 'stories260K.bin');

describePagedBlocks({
  backend: 'cpu',
  activate,
  available: existsSync(stories),
  load: async () => {
    const loaded = await loadModel(stories);
    return { model: loaded.model as DecoderOnlyModel, encode: (t) => loaded.tokenizer!.encode(t), dispose: () => loaded.dispose() };
  },
});
