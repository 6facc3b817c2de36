import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { UnsupportedError } from '@kvt/core';
import { registerBackend } from '@kvt/kernels';
import { ConcatKVCache } from './concat-cache.js';
import { createKVCache } from './registry.js';

const options = { numLayers: 1, batchSize: 1, numKvHeads: 1, headDim: 4, maxLength: 8 };

describe('createKVCache', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it("'backend' with no backend package registered is a typed error that names the packages to import", () => {
    let error: unknown;
    try {
      createKVCache(options, 'backend');
    } catch (e) {
      error = e;
    }
    expect(UnsupportedError.isInstance(error)).toBe(true);
    expect(String((error as Error).message)).toMatch(/@kvt\/backend-cpu/);
  });

  it("'auto' gives the reference cache there, and the backend's own once a package registers one", () => {
    const fallback = createKVCache(options, 'auto');
    expect(fallback).toBeInstanceOf(ConcatKVCache);
    fallback.dispose();
    class OwnCache extends ConcatKVCache {}
    registerBackend({ name: 'cpu', activate: async () => {}, createKVCache: (o) => new OwnCache(o) });
    for (const kind of ['auto', 'backend'] as const) {
      const own = createKVCache(options, kind);
      expect(own).toBeInstanceOf(OwnCache);
      own.dispose();
    }
    const reference = createKVCache(options, 'concat');
    expect(reference).not.toBeInstanceOf(OwnCache);
    reference.dispose();
  });
});
