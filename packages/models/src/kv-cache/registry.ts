import * as tf from '@tensorflow/tfjs-core';
import { ConcatKVCache } from './concat-cache.js';
import type { KVCache, KVCacheFactory, KVCacheOptions } from './kv-cache.js';

const factories = new Map<string, KVCacheFactory>();

/**
 * Registers the KV cache a backend package brings for a tfjs backend name. Backend packages call this on import.
 *
 * @example
 * ```ts
 * registerKVCacheFactory('wasm', (o) => new WasmKVCache(o));
 * ```
 */
export function registerKVCacheFactory(backendName: string, factory: KVCacheFactory): void {
  factories.set(backendName, factory);
}

/** The cache for the active tfjs backend ('backend'), or the reference concat cache ('concat', and the fallback). */
export function createKVCache(options: KVCacheOptions, kind: 'backend' | 'concat' = 'backend'): KVCache {
  const factory = kind === 'backend' ? factories.get(tf.getBackend()) : undefined;
  return factory ? factory(options) : new ConcatKVCache(options);
}

/** Whether a backend cache is registered for the active backend. */
export function hasBackendKVCache(backendName = tf.getBackend()): boolean {
  return factories.has(backendName);
}
