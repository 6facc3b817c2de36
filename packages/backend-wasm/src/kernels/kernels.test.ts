import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { describeKernelConformance } from '@kvt/models/testing';
import { kvtKernelsSource } from './kvt-kernels-wasm.js';

// The wasm kernels and the heap KV cache against the reference (float32 SIMD sums in another order: 1e-5).
describeKernelConformance({ backend: 'wasm', setup: () => import('../index.js'), tolerance: 1e-5, kernels: ['KvtLinear', 'KvtGatherRows', 'KvtRmsNorm', 'KvtLlamaBlock', 'KvtCacheAttend'], weightFormats: ['q8_0', 'q4_0', 'q4_k', 'fp16'] });

describe('kvt-kernels-wasm.ts', () => {
  it('was built from the current kvt-kernels.c (run node scripts/build-kernels.mjs after editing it)', () => {
    const source = readFileSync(new URL('./kvt-kernels.c', import.meta.url));
    expect(createHash('sha256').update(source).digest('hex')).toBe(kvtKernelsSource);
  });
});
