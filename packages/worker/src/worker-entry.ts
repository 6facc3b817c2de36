/**
 * The Web Worker script of `@kvt/worker`: answers a page's `createWorkerRuntime` (its only side effect). A bundler
 * builds it from `new Worker(new URL('@kvt/worker/worker' …))` or from the default `createWorkerRuntime()`.
 *
 * @example
 * ```ts
 * // my-worker.ts, started with new Worker(new URL('./my-worker.ts', import.meta.url), { type: 'module' })
 * import '@kvt/worker/worker';
 * ```
 */
import { exposeWorkerApi } from './worker.js';

exposeWorkerApi();
