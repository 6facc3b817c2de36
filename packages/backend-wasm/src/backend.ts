import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { activateTfBackend, type Backend } from '@kvt/kernels';
import { WasmKVCache } from './kernels/kv-cache.js';

export interface WasmActivateOptions {
  /** Where tfjs-backend-wasm's `.wasm` files are served (a folder URL, or one URL per file). Browsers only. */
  readonly wasmPaths?: string | Record<string, string>;
}

/**
 * The wasm backend: tfjs-wasm for every op, kvt's SIMD kernels (kernels/kvt-kernels.c) for the decode step, and a KV
 * cache in tfjs-wasm's heap.
 *
 * @example
 * ```ts
 * import { wasmBackend } from '@kvt/backend-wasm';
 * await wasmBackend.activate();
 * ```
 */
export const wasmBackend: Backend<WasmActivateOptions> = {
  name: 'wasm',
  async activate(options: WasmActivateOptions = {}): Promise<void> {
    if (options.wasmPaths) setWasmPaths(options.wasmPaths as Parameters<typeof setWasmPaths>[0]);
    await activateTfBackend('wasm');
  },
  createKVCache: (options) => new WasmKVCache(options),
};
