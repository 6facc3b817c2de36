import * as tf from '@tensorflow/tfjs-core';
import { UnsupportedError } from '@kvt/core';
import type { Backend } from '@kvt/kernels';
import { WebGPUKVCache } from './kernels/kv-cache.js';

/**
 * Pipelines tfjs's WebGPU backend has compiled so far, or null on another backend. With the bucket cache the count
 * stays constant from the second decode step on.
 *
 * @example
 * ```ts
 * const before = compiledPipelines();
 * ```
 */
export function compiledPipelines(): number | null {
  const b = tf.backend() as unknown as { pipelineCache?: Record<string, unknown> };
  return tf.getBackend() === 'webgpu' && b.pipelineCache ? Object.keys(b.pipelineCache).length : null;
}

/**
 * The webgpu backend: tfjs-webgpu for every op and its own KV cache (kernels/): K/V rows written in place, attention
 * over the valid positions, shapes fixed inside a bucket (WebGPU, too, compiles a pipeline per op and shape).
 *
 * @example
 * ```ts
 * import { webgpuBackend } from '@kvt/backend-webgpu';
 * await webgpuBackend.activate(); // throws where the browser has no WebGPU adapter
 * ```
 */
export const webgpuBackend: Backend = {
  name: 'webgpu',
  async activate(): Promise<void> {
    if (typeof navigator === 'undefined' || !('gpu' in navigator))
      throw new UnsupportedError('This environment has no WebGPU (navigator.gpu); use @kvt/backend-webgl or @kvt/backend-wasm.');
    if (!(await tf.setBackend('webgpu')))
      throw new UnsupportedError('The webgpu backend failed to initialize (no adapter?); use @kvt/backend-webgl or @kvt/backend-wasm.');
    await tf.ready();
  },
  createKVCache: (options) => new WebGPUKVCache(options),
  counters: () => ({ compiledPipelines: compiledPipelines() ?? 0 }),
};
