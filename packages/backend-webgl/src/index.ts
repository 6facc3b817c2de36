/**
 * @kvt/backend-webgl: runs kvt on TensorFlow.js's `webgl` backend. Importing it registers the backend and its KV cache
 * and makes it the active backend; import another backend package (or call its `activate()`) to switch.
 *
 * @example
 * ```ts
 * import '@kvt/backend-webgl';
 * const loaded = await loadModel('model-folder');
 * ```
 *
 * @packageDocumentation
 */
import '@tensorflow/tfjs-backend-webgl';
import * as tf from '@tensorflow/tfjs-core';
import { BucketKVCache, registerKVCacheFactory } from '@kvt/models';

export { BucketKVCache } from '@kvt/models';
export { compiledShaderPrograms } from './shader-programs.js';

// The KV cache: fixed-shape buckets with a length mask, so decode steps compile no new shaders (docs/decisions/0002)
registerKVCacheFactory('webgl', (options) => new BucketKVCache(options));

export const backendName = 'webgl';

/** Makes `webgl` the active tfjs backend (models loaded afterwards live there). */
export async function activate(): Promise<void> {
  tf.env().set('IS_TEST', true); // no "install tfjs-node" banner
  if (!(await tf.setBackend(backendName))) throw new Error('The webgl backend failed to initialize.');
  await tf.ready();
}

// WebGL exists in browsers only: activate on import there (a browser without WebGL keeps its current backend; an
// explicit activate() call still throws).
if (typeof document !== 'undefined') await activate().catch((e: unknown) => console.warn(`kvt: WebGL unavailable: ${String(e)}`));
