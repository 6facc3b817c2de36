/**
 * @kvt/backend-cpu: runs kvt on TensorFlow.js's `cpu` backend. Importing it registers the backend and its KV cache
 * and makes it the active backend; import another backend package (or call its `activate()`) to switch.
 *
 * @example
 * ```ts
 * import '@kvt/backend-cpu';
 * const loaded = await loadModel('model-folder');
 * ```
 *
 * @packageDocumentation
 */
import './register.js';
import { cpuBackend } from './backend.js';

export { cpuBackend } from './backend.js';
export { HostKVCache } from './kernels/kv-cache.js';

export const backendName = 'cpu';

/**
 * Makes `cpu` the active tfjs backend (models loaded afterwards live there).
 *
 * @example
 * ```ts
 * await activate();
 * ```
 */
export function activate(): Promise<void> {
  return cpuBackend.activate();
}
