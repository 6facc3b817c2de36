import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { generate } from '@kvt/core';
import { describeRealFixtures } from '@kvt/loaders/testing';
import { describeCacheConformance, describeKernelConformance, tinyDecoderOnlyModels } from '@kvt/models/testing';

declare const __KVT_FIXTURES__: string;
const fixture = (p: string) => `${location.origin}/@fs${__KVT_FIXTURES__}/${p}`;
const readText = async (p: string) => (await fetch(fixture(p))).text();

// Headless Chromium exposes WebGPU on SwiftShader (with --enable-unsafe-webgpu, on 127.0.0.1); say so when it does not.
const gpu = (navigator as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
const adapter = gpu ? await gpu.requestAdapter() : null;
if (!adapter) console.warn('WebGPU tests skipped: this browser has no WebGPU adapter');

// The same suites as in Node and on WebGL, over the WebGPU cache (rows written in place, attention over the valid
// positions).
describe.skipIf(!adapter)('webgpu', () => {
  describeKernelConformance({ backend: 'webgpu', setup: () => import('./index.js'), tolerance: 2e-4, kernels: [] });
  describeCacheConformance({ backend: 'webgpu', cache: 'backend', setup: () => import('./index.js'), steps: 16 });
  describeRealFixtures({ backend: 'webgpu', cache: 'backend', setup: () => import('./index.js'), fixture, readText, tolerance: 2e-4, ggufTrace: false });

  describe('WebGPU pipelines', () => {
    it('compiles no new pipeline after the second decode step', async () => {
      const { compiledPipelines } = await import('./index.js');
      await tf.setBackend('webgpu');
      const model = tinyDecoderOnlyModels[0]!.build();
      try {
        const counts: number[] = [];
        await generate(model, { inputIds: [1, 5, 9], maxNewTokens: 40, stopTokenIds: [], onToken: () => counts.push(compiledPipelines()!) });
        // counts[k] is read after token k: token 0 comes from the prefill, token 1 from decode step 1, …
        expect(counts[2]).toBeGreaterThan(0);
        expect(counts[counts.length - 1]).toBe(counts[2]);
      } finally {
        model.dispose();
      }
    });
  });
});
