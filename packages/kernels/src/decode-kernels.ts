import * as tf from '@tensorflow/tfjs-core';
import type { KVCache } from './kv-cache.js';
import type { KVStorage, WriteContext } from './kv-cache-container.js';
import { KvtCacheAttend, KvtLinear, KvtLlamaBlock, KvtRmsNorm, type KvtKernelName } from './kernel-names.js';

/** Whether the backend (default: the active one) registered kvt kernel `name`. */
export function hasKernel(name: KvtKernelName, backendName: string = tf.getBackend()): boolean {
  return tf.getKernel(name, backendName) !== undefined;
}

/** Whether `cache`'s storage is read and written by the active backend's kernel `name`. */
export function cacheTakesKernel(cache: KVCache, name: KvtKernelName): boolean {
  return cache.kernels?.has(name) === true && hasKernel(name);
}

function run<T extends tf.Tensor>(name: KvtKernelName, inputs: Record<string, tf.Tensor>, attrs: object): T {
  return tf.engine().runKernel(name, inputs as tf.NamedTensorMap, attrs as unknown as tf.NamedAttrMap) as T;
}

/** x `[m, in]` · w `[in, out]` → `[m, out]` by the backend's {@link KvtLinear}, or null where it has none. */
export function runLinear(x: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D | null {
  return hasKernel(KvtLinear) ? run<tf.Tensor2D>(KvtLinear, { x, w }, {}) : null;
}

/** RMSNorm of x `[m, d]` by the backend's {@link KvtRmsNorm}, or null where it has none. */
export function runRmsNorm(x: tf.Tensor2D, weight: tf.Tensor1D, epsilon: number): tf.Tensor2D | null {
  return hasKernel(KvtRmsNorm) ? run<tf.Tensor2D>(KvtRmsNorm, { x, weight }, { epsilon }) : null;
}

/** The tensors of one Llama block, kvt layout (Linear weights `[in, out]`). */
export interface LlamaBlockInputs {
  readonly x: tf.Tensor2D; // [batch·n, hidden], rows of batch row r at [r·n, (r+1)·n)
  readonly attentionNorm: tf.Tensor1D; // [hidden]
  readonly qkv: tf.Tensor2D; // [hidden, (heads + 2·kvHeads)·headDim]
  readonly o: tf.Tensor2D; // [heads·headDim, hidden]
  readonly ffnNorm: tf.Tensor1D; // [hidden]
  readonly gateUp: tf.Tensor2D; // [hidden, 2·intermediate]
  readonly down: tf.Tensor2D; // [intermediate, hidden]
  readonly cos: tf.Tensor2D; // [positions, headDim/2]
  readonly sin: tf.Tensor2D; // [positions, headDim/2]
}

/**
 * A block writes K/V at positions `[cache.length, cache.length + newPositions)` of `layer`; token t of row r sits at
 * position `max(0, cache.length + t − cache.padding[r])`. The caller advances the cache after the last layer.
 */
export interface LlamaBlockAttrs {
  readonly cache: KVCache;
  readonly layer: number;
  readonly newPositions: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly intermediateSize: number;
  readonly epsilon: number;
  readonly ropeStyle: 'interleaved' | 'half';
}

/**
 * One Llama block (pre-norm attention with rotary positions and grouped K/V, then SwiGLU, both residual) by the
 * backend's {@link KvtLlamaBlock}: x `[batch·n, hidden]` → the block's output, same shape. Null where the backend
 * has no such kernel or does not own `attrs.cache`'s storage; the caller then composes it from tfjs ops.
 */
export function runLlamaBlock(inputs: LlamaBlockInputs, attrs: LlamaBlockAttrs): tf.Tensor2D | null {
  if (!cacheTakesKernel(attrs.cache, KvtLlamaBlock)) return null;
  return run<tf.Tensor2D>(KvtLlamaBlock, { ...inputs }, attrs);
}

/** q `[batch, heads, n, headDim]` (scaled), k/v `[batch, kvHeads, n, headDim]`; see `KVStorage.attend`. */
export interface CacheAttendAttrs {
  readonly storage: KVStorage;
  readonly layer: number;
  readonly at: WriteContext;
}

/** `KVStorage.attend` by the backend's {@link KvtCacheAttend}: a backend's storage calls this. */
export function runCacheAttend(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, attrs: CacheAttendAttrs): tf.Tensor4D {
  return run<tf.Tensor4D>(KvtCacheAttend, { q, k, v }, attrs);
}
