import { createBackendKVCache, registeredBackend, type KVCache, type KVCacheOptions } from '@kvt/kernels';
import { ConcatKVCache } from './concat-cache.js';

/** Which cache a model creates: the active backend's own ('backend'), the reference ('concat'), or the backend's where one is registered ('auto'). */
export type KVCacheKind = 'auto' | 'backend' | 'concat';

/**
 * The KV cache of `kind` for the active tfjs backend. 'backend' throws a typed error where no backend package is
 * registered; 'auto' then gives the reference concat cache.
 *
 * @example
 * ```ts
 * const cache = createKVCache({ numLayers: 2, batchSize: 1, numKvHeads: 2, headDim: 8, maxLength: 64 }, 'concat');
 * ```
 */
export function createKVCache(options: KVCacheOptions, kind: KVCacheKind = 'auto'): KVCache {
  if (kind === 'concat' || (kind === 'auto' && !registeredBackend())) return new ConcatKVCache(options);
  return createBackendKVCache(options);
}

/** Whether a backend package is registered for the tfjs backend (default: the active one). */
export function hasBackendKVCache(backendName?: string): boolean {
  return registeredBackend(backendName) !== undefined;
}
