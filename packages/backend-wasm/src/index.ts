/**
 * @kvt/backend-wasm: runs kvt on TensorFlow.js's `wasm` backend with kvt's own WebAssembly SIMD kernels for the decode
 * step (a whole Llama block per call, attention over a KV cache kept in tfjs-wasm's heap). Importing it registers
 * the backend, its kernels and its KV cache and, in Node, makes it the active backend; import another backend
 * package (or call its `activate()`) to switch.
 *
 * @example
 * ```ts
 * import '@kvt/backend-wasm';
 * const loaded = await loadModel('model-folder');
 * ```
 *
 * @packageDocumentation
 */
import './register.js';
import { wasmBackend, type WasmActivateOptions } from './backend.js';

export { wasmBackend, type WasmActivateOptions } from './backend.js';
export { wasmFileUrls, type WasmFile } from './wasm-files.js';
export { WasmKVCache } from './kernels/kv-cache.js';

export const backendName = 'wasm';

/**
 * Makes `wasm` the active tfjs backend (models loaded afterwards live there). In a browser the `.wasm` files come from
 * beside this package (its `wasm/` folder, which bundlers emit as assets); `wasmPaths` points elsewhere. A failure
 * is an `UnsupportedError` that says which file could not be fetched and what to do.
 *
 * @example
 * ```ts
 * await activate();                                          // the package's own files
 * await activate({ wasmPaths: 'https://cdn.example/tfjs-wasm/' }); // or yours
 * ```
 */
export function activate(options: WasmActivateOptions = {}): Promise<void> {
  return wasmBackend.activate(options);
}
