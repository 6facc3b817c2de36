import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { generate } from '@kvt/core';
import { describeRealFixtures } from '@kvt/loaders/testing';
import { describeCacheConformance, describeKernelConformance, tinyDecoderOnlyModels } from '@kvt/models/testing';
import { compiledShaderPrograms } from './index.js';

declare const __KVT_FIXTURES__: string;
const fixture = (p: string) => `${location.origin}/@fs${__KVT_FIXTURES__}/${p}`;
const readText = async (p: string) => (await fetch(fixture(p))).text();

// The same suites as in Node, over the WebGL bucket cache, in headless Chromium.
describeCacheConformance({ backend: 'webgl', cache: 'backend', setup: () => import('./index.js'), steps: 24 });
describeKernelConformance({ backend: 'webgl', setup: () => import('./index.js'), tolerance: 2e-4, kernels: [] });
describeRealFixtures({ backend: 'webgl', cache: 'backend', setup: () => import('./index.js'), fixture, readText, tolerance: 2e-4 });

describe('WebGL shader programs', () => {
  it('compiles no new shader program after the second decode step', async () => {
    await import('./index.js');
    await tf.setBackend('webgl');
    const model = tinyDecoderOnlyModels[0]!.build();
    try {
      const counts: number[] = [];
      await generate(model, { inputIds: [1, 5, 9], maxNewTokens: 40, stopTokenIds: [], onToken: () => counts.push(compiledShaderPrograms()!) });
      // counts[k] is read after token k: token 0 comes from the prefill, token 1 from decode step 1, …
      expect(counts[2]).toBeGreaterThan(0);
      expect(counts[counts.length - 1]).toBe(counts[2]);
    } finally {
      model.dispose();
    }
  });
});
