/**
 * Where the browser finds tfjs-backend-wasm's `.wasm` binaries: this package ships them in `wasm/` (copied from
 * `@tensorflow/tfjs-backend-wasm` when it is built) and names them relative to itself, a pattern Vite, webpack 5 and
 * Parcel follow when they bundle (the files are emitted as assets) and that a plain ES-module page served from a
 * package folder or a CDN resolves as is.
 *
 * @example
 * ```ts
 * import { wasmFileUrls } from '@kvt/backend-wasm';
 * console.log(wasmFileUrls()['tfjs-backend-wasm-simd.wasm']);
 * ```
 */
export function wasmFileUrls(): Record<WasmFile, string> {
  return {
    'tfjs-backend-wasm.wasm': new URL('../wasm/tfjs-backend-wasm.wasm', import.meta.url).href,
    'tfjs-backend-wasm-simd.wasm': new URL('../wasm/tfjs-backend-wasm-simd.wasm', import.meta.url).href,
    'tfjs-backend-wasm-threaded-simd.wasm': new URL('../wasm/tfjs-backend-wasm-threaded-simd.wasm', import.meta.url).href,
  };
}

export type WasmFile = 'tfjs-backend-wasm.wasm' | 'tfjs-backend-wasm-simd.wasm' | 'tfjs-backend-wasm-threaded-simd.wasm';
