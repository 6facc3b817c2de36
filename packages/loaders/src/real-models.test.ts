import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe } from 'vitest';
import { describeRealFixtures } from './testing/index.js';
import { FIXTURES, haveFixtures } from './__tests__/fixtures.js';

// The reference concat cache on cpu and wasm; backend packages run the same checks with their own caches.
describe.skipIf(!haveFixtures)('real checkpoints', () => {
  for (const backend of ['cpu', 'wasm'])
    describeRealFixtures({
      backend,
      cache: 'concat',
      fixture: (p) => join(FIXTURES, p),
      readText: (p) => readFile(join(FIXTURES, p), 'utf8'),
    });
});
