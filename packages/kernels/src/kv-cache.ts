import type * as tf from '@tensorflow/tfjs-core';
import type { Cache, KVDtype } from '@kvt/core';

/**
 * The tensor-level side of a KV cache, which models call. Implementations: `ConcatKVCache` in `@kvt/models` (the
 * reference, on plain tfjs ops) and one per backend package (`@kvt/backend-cpu`, `-wasm`, `-webgl`, `-webgpu`).
 *
 * Per layer the cache holds keys and values `[batch, kvHeads, length, headDim]`. A forward pass over `n` new
 * positions calls `attend` once per layer, then `advance(n)` once.
 */
export interface KVCache extends Cache {
  readonly numKvHeads: number;
  readonly headDim: number;
  /** Left-padding positions at the start of each row (masked from attention). */
  readonly padding: readonly number[];
  /** Sets each row's left padding; only while the cache is empty. */
  setPadding(padding: readonly number[]): void;
  /**
   * Appends `k`, `v` at positions `[length, length + n)` of `layer` and returns causal attention of `q` over every
   * valid position (left padding masked): `softmax(q · Kᵀ + mask) · V`.
   * q `[batch, heads, n, headDim]`, already scaled by 1/√headDim; k, v `[batch, kvHeads, n, headDim]`.
   * Returns `[batch, heads, n, headDim]`, owned by the caller. Inputs are not disposed.
   */
  attend(layer: number, q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D): tf.Tensor4D;
  /** Marks `n` positions written by every layer. */
  advance(n: number): void;
  fork(): KVCache;
  /**
   * Bytes held outside tfjs (host memory such as a `WebAssembly.Memory`), for caches that keep their storage there;
   * tensor-backed caches leave it undefined (their storage shows in `tf.memory().numBytes`).
   */
  readonly hostBytes?: number | undefined;
  /**
   * Names of the backend kernels (see `kernel-names.ts`) that read and write this cache's storage directly; a model
   * uses such a kernel only for a cache that lists it.
   */
  readonly kernels?: ReadonlySet<string> | undefined;
}

export interface KVCacheOptions {
  readonly numLayers: number;
  readonly batchSize: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  /** The model's positions: the cache never holds more. */
  readonly maxLength: number;
  /** Positions to reserve up front. */
  readonly capacityHint?: number;
  /** How K/V are stored (default 'fp32'). */
  readonly kvDtype?: KVDtype;
}

export type KVCacheFactory = (options: KVCacheOptions) => KVCache;
