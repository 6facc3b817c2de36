import { describeRealFixtures } from '@kvt/loaders/testing';
import { describeCacheConformance, describeKernelConformance } from '@kvt/models/testing';

declare const __KVT_FIXTURES__: string;
const fixture = (p: string) => `${location.origin}/@fs${__KVT_FIXTURES__}/${p}`;
const readText = async (p: string) => (await fetch(fixture(p))).text();
const setup = async () => {
  const m = await import('./index.js');
  await m.activate(); // the package finds its own .wasm files
};

// The same suites as in Node, over the WASM backend's cache, in headless Chromium.
describeCacheConformance({ backend: 'wasm', cache: 'backend', setup, steps: 32 });
describeKernelConformance({ backend: 'wasm', setup, tolerance: 1e-5, kernels: ['KvtLinear', 'KvtGatherRows', 'KvtRmsNorm', 'KvtLlamaBlock', 'KvtCacheAttend'], weightFormats: ['q8_0', 'q4_0', 'q4_k', 'fp16'] });
describeRealFixtures({ backend: 'wasm', cache: 'backend', setup, fixture, readText });
