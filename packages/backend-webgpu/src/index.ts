/**
 * @kvt/backend-webgpu: runs kvt on TensorFlow.js's `webgpu` backend. Importing it registers the backend and its KV
 * cache (the fixed-shape {@link BucketKVCache} the WebGL package uses: WebGPU, too, compiles a pipeline per op and
 * shape) and, where the browser has WebGPU, makes it the active backend.
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
import '@tensorflow/tfjs-backend-webgpu';
import * as tf from '@tensorflow/tfjs-core';
import { UnsupportedError } from '@kvt/core';
import { BucketKVCache, registerKVCacheFactory } from '@kvt/models';

export { BucketKVCache } from '@kvt/models';

registerKVCacheFactory('webgpu', (options) => new BucketKVCache(options));

export const backendName = 'webgpu';

/** Makes `webgpu` the active tfjs backend (models loaded afterwards live there). */
export async function activate(): Promise<void> {
  if (typeof navigator === 'undefined' || !('gpu' in navigator))
    throw new UnsupportedError('This environment has no WebGPU (navigator.gpu); use @kvt/backend-webgl or @kvt/backend-wasm.');
  if (!(await tf.setBackend(backendName)))
    throw new UnsupportedError('The webgpu backend failed to initialize (no adapter?); use @kvt/backend-webgl or @kvt/backend-wasm.');
  await tf.ready();
}

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

// Activate on import where WebGPU exists; elsewhere keep the current backend (an explicit activate() still throws).
if (typeof navigator !== 'undefined' && 'gpu' in navigator)
  await activate().catch((e: unknown) => console.warn(`kvt: WebGPU unavailable: ${String(e)}`));
