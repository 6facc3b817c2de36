/**
 * @kvt/backend-wasm: runs kvt on TensorFlow.js's `wasm` backend. Importing it registers the backend and its KV cache
 * and makes it the active backend; import another backend package (or call its `activate()`) to switch.
 *
 * @example
 * ```ts
 * import '@kvt/backend-wasm';
 * const loaded = await loadModel('model-folder');
 * ```
 *
 * @packageDocumentation
 */
import '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs-core';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { HostKVCache, registerKVCacheFactory } from '@kvt/models';

// The KV cache: host-memory storage written in place, fused decode attention (docs/decisions/0002-kv-cache-storage.md)
registerKVCacheFactory('wasm', (options) => new HostKVCache(options));

export const backendName = 'wasm';

/**
 * Makes `wasm` the active tfjs backend (models loaded afterwards live there). In a browser bundle, give the folder
 * (URL) that serves tfjs-backend-wasm's `.wasm` files, before the first activation.
 */
export async function activate(options: { wasmPaths?: string | Record<string, string> } = {}): Promise<void> {
  tf.env().set('IS_TEST', true); // no "install tfjs-node" banner
  if (options.wasmPaths) setWasmPaths(options.wasmPaths as Parameters<typeof setWasmPaths>[0]);
  if (!(await tf.setBackend(backendName))) throw new Error('The wasm backend failed to initialize.');
  await tf.ready();
}

// In Node the .wasm files are found beside the package: activate on import. Browsers call activate({ wasmPaths }).
if (typeof process !== 'undefined' && process.versions?.node) await activate();
