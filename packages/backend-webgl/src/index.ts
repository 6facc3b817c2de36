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
import './register.js';
import { webglBackend } from './backend.js';

export { webglBackend } from './backend.js';
export { BucketKVCache } from './kernels/kv-cache.js';
export { compiledShaderPrograms } from './shader-programs.js';

export const backendName = 'webgl';

/**
 * Makes `webgl` the active tfjs backend (models loaded afterwards live there).
 *
 * @example
 * ```ts
 * await activate();
 * ```
 */
export function activate(): Promise<void> {
  return webglBackend.activate();
}
