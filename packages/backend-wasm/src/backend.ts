import * as tf from '@tensorflow/tfjs-core';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { UnsupportedError } from '@kvt/core';
import type { Backend } from '@kvt/kernels';
import { heapOf } from './kernels/heap.js';
import { WasmKVCache } from './kernels/kv-cache.js';
import { wasmFileUrls, type WasmFile } from './wasm-files.js';

export interface WasmActivateOptions {
  /**
   * Where tfjs-backend-wasm's `.wasm` files are served (a folder URL, or one URL per file). Browsers only; by default
   * the copies this package ships beside itself (`@kvt/backend-wasm/wasm/`).
   */
  readonly wasmPaths?: string | Partial<Record<WasmFile, string>>;
}

const inNode = typeof process !== 'undefined' && !!process.versions?.node;

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
  weightFormats: ['fp32', 'fp16', 'q8_0', 'q4_0', 'q4_k'],
  // rows in groups of four stream at the memory's speed in a decode step (decision 0010)
  float32Layout: 'rows',
  kvDtypes: ['fp32', 'fp16', 'int8'],
  async activate(options: WasmActivateOptions = {}): Promise<void> {
    // Node finds the files beside tfjs-backend-wasm; a browser fetches them from here (or where the caller says)
    const paths = options.wasmPaths ?? (inNode ? undefined : wasmFileUrls());
    if (paths !== undefined) setWasmPaths(paths as Parameters<typeof setWasmPaths>[0]);
    if (!(await tf.setBackend('wasm'))) throw await explainFailure(paths);
    await tf.ready();
  },
  createKVCache: (options) => new WasmKVCache(options),
  // weights are written where the kernels read them: no JavaScript copy held until a garbage collection
  tensorFromBytes: (bytes, fill) => heapOf(tf.backend()).tensorFromBytes(bytes, fill),
};

/** Why the backend did not start, said so that the reader knows what to do. */
async function explainFailure(paths: WasmActivateOptions['wasmPaths']): Promise<UnsupportedError> {
  const simd = typeof paths === 'string' ? new URL('tfjs-backend-wasm-simd.wasm', paths).href : paths?.['tfjs-backend-wasm-simd.wasm'];
  let problem = 'it failed to initialize';
  if (simd && typeof fetch === 'function') {
    const r = await fetch(simd).catch((e: unknown) => e as Error);
    if (r instanceof Error) problem = `${simd} could not be fetched (${r.message})`;
    else if (!r.ok) problem = `${simd} answered ${r.status} ${r.statusText}`;
    else if (!(r.headers.get('content-type') ?? '').includes('wasm')) problem = `${simd} is served as ${r.headers.get('content-type') ?? 'no type'}, not application/wasm`;
  }
  return new UnsupportedError(
    `The wasm backend did not start: ${problem}. Serve the .wasm files of @kvt/backend-wasm (its wasm/ folder) where the ` +
      "page can fetch them, as application/wasm, or pass activate({ wasmPaths: 'https://…/folder/' }); with Vite's dev " +
      "server, add optimizeDeps: { exclude: ['@kvt/backend-wasm'] } so the package keeps its own URLs.",
  );
}
