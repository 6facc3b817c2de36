import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe } from 'vitest';
import { describeRealFixtures } from '@kvt/loaders/testing';
import { describeCacheConformance } from '@kvt/models/testing';

const fixtures = process.env.KVT_FIXTURES ?? resolve(dirname(fileURLToPath(import.meta.url)), '../../../../shared/fixtures');

// The shared conformance suites over this backend's own KV cache: exactness against the uncached forward pass, cache
// operations, beams, aborts and leaks; then the real fixtures against llama2.c and CTranslate2.
describeCacheConformance({ backend: 'cpu', cache: 'backend', setup: () => import('./index.js') });
describe.skipIf(!existsSync(fixtures))('real fixtures', () => {
  describeRealFixtures({
    backend: 'cpu',
    cache: 'backend',
    setup: () => import('./index.js'),
    fixture: (p) => join(fixtures, p),
    readText: (p) => readFile(join(fixtures, p), 'utf8'),
  });
});
