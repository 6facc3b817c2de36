import { activateTfBackend, type Backend } from '@kvt/kernels';
import { BucketKVCache } from './kernels/kv-cache.js';
import { compiledShaderPrograms } from './shader-programs.js';

/**
 * The webgl backend: tfjs-webgl for every op and a KV cache of fixed-shape buckets with a length mask, so decode
 * steps compile no new shaders (kernels/kv-cache.ts; docs/decisions/0002-kv-cache-storage.md).
 *
 * @example
 * ```ts
 * import { webglBackend } from '@kvt/backend-webgl';
 * await webglBackend.activate();
 * console.log(webglBackend.counters?.());
 * ```
 */
export const webglBackend: Backend = {
  name: 'webgl',
  async activate(): Promise<void> {
    await activateTfBackend('webgl');
  },
  createKVCache: (options) => new BucketKVCache(options),
  counters: () => ({ compiledShaderPrograms: compiledShaderPrograms() ?? 0 }),
};
