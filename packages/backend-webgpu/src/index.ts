/**
 * @kvt/backend-webgpu: runs kvt on TensorFlow.js's `webgpu` backend. Importing it registers the backend and its KV
 * cache and, where the browser has WebGPU, makes it the active backend.
 *
 * @example
 * ```ts
 * import { activate } from '@kvt/backend-webgpu';
 * await activate(); // throws where the browser has no WebGPU adapter
 * const loaded = await loadModel('model-folder');
 * ```
 *
 * @packageDocumentation
 */
import './register.js';
import { webgpuBackend } from './backend.js';

export { compiledPipelines, webgpuBackend } from './backend.js';
export { WebGPUKVCache, WebGPUStorage } from './kernels/kv-cache.js';

export const backendName = 'webgpu';

/**
 * Makes `webgpu` the active tfjs backend (models loaded afterwards live there).
 *
 * @example
 * ```ts
 * await activate();
 * ```
 */
export function activate(): Promise<void> {
  return webgpuBackend.activate();
}
