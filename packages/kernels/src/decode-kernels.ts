import * as tf from '@tensorflow/tfjs-core';
import type { KVCache } from './kv-cache.js';
import type { KVStorage, WriteContext } from './kv-cache-container.js';
import { KvtCacheAttend, KvtGatherRows, KvtLinear, KvtLlamaBlock, KvtRmsNorm, type KvtKernelName } from './kernel-names.js';
import { LINEAR_ROW_GROUP, groupRows, type QuantizedFormat, type RowGroup, type WeightFormat } from './weight-formats.js';

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

/** A quantized weight: raw bytes (an int32 tensor) of rows `[outDim, inDim]` in `format`, laid out by `rowGroup`. */
export interface QuantizedWeight {
  readonly w: tf.Tensor1D; // int32 [ceil(outDim · bytesPerRow / 4)]
  readonly format: QuantizedFormat;
  readonly inDim: number;
  readonly outDim: number;
  readonly rowGroup: RowGroup;
}

/**
 * Uploads GGUF-ordered quantized rows `[outDim, inDim]` as a {@link QuantizedWeight} in the layout of `rowGroup`
 * (default: linear weights' row groups of four; tables that rows are gathered from take 1).
 *
 * @example
 * ```ts
 * const w = quantizedWeight(quantizeRows(rows, 2048, 768, 'q8_0'), 'q8_0', 768, 2048);
 * const y = runLinear(x, w); // x [m, 768] → [m, 2048]
 * ```
 */
export function quantizedWeight(rows: Uint8Array, format: QuantizedFormat, inDim: number, outDim: number, rowGroup: RowGroup = LINEAR_ROW_GROUP): QuantizedWeight {
  const bytes = groupRows(rows, format, inDim, outDim, rowGroup);
  return { w: tf.tensor1d(new Int32Array(bytes.buffer), 'int32'), format, inDim, outDim, rowGroup };
}

/** `KvtLinear`'s attributes: the weight's format, size and row group (float32 weights `[in, out]` need none). */
export interface LinearAttrs {
  readonly format: WeightFormat;
  readonly inDim: number;
  readonly outDim: number;
  readonly rowGroup: RowGroup;
}

/**
 * x `[m, in]` · w → `[m, out]` by the backend's {@link KvtLinear}: w float32 `[in, out]`, or a {@link QuantizedWeight}.
 * Null where the backend has no such kernel (float32: the caller uses tf.matMul; quantized weights are only built on
 * backends that have it).
 */
export function runLinear(x: tf.Tensor2D, w: tf.Tensor2D | QuantizedWeight): tf.Tensor2D | null {
  if (!hasKernel(KvtLinear)) return null;
  if (w instanceof tf.Tensor) return run<tf.Tensor2D>(KvtLinear, { x, w }, { format: 'fp32', inDim: w.shape[0], outDim: w.shape[1], rowGroup: 1 });
  const attrs: LinearAttrs = { format: w.format, inDim: w.inDim, outDim: w.outDim, rowGroup: w.rowGroup };
  return run<tf.Tensor2D>(KvtLinear, { x, w: w.w }, attrs);
}

/** `KvtGatherRows`' attributes: the table's format, its row length and row count, and its row group. */
export interface GatherRowsAttrs {
  readonly format: QuantizedFormat;
  readonly dim: number;
  readonly rows: number;
  readonly rowGroup: RowGroup;
}

/**
 * Rows `ids` `[n]` (int32) of a quantized table (rows `[vocab, dim]`) as float32 `[n, dim]`, by {@link KvtGatherRows}:
 * an embedding lookup in a table that is also a tied output projection.
 */
export function runGatherRows(table: QuantizedWeight, ids: tf.Tensor1D): tf.Tensor2D {
  const attrs: GatherRowsAttrs = { format: table.format, dim: table.inDim, rows: table.outDim, rowGroup: table.rowGroup };
  return run<tf.Tensor2D>(KvtGatherRows, { table: table.w, ids }, attrs);
}

/** RMSNorm of x `[m, d]` by the backend's {@link KvtRmsNorm}, or null where it has none. */
export function runRmsNorm(x: tf.Tensor2D, weight: tf.Tensor1D, epsilon: number): tf.Tensor2D | null {
  return hasKernel(KvtRmsNorm) ? run<tf.Tensor2D>(KvtRmsNorm, { x, weight }, { epsilon }) : null;
}

/**
 * The tensors of one Llama block. Linear weights are float32 `[in, out]` (kvt's layout) or quantized rows `[out, in]`
 * (raw bytes; their formats in {@link LlamaBlockAttrs.formats}).
 */
export interface LlamaBlockInputs {
  readonly x: tf.Tensor2D; // [batch·n, hidden], rows of batch row r at [r·n, (r+1)·n)
  readonly attentionNorm: tf.Tensor1D; // [hidden]
  readonly qkv: tf.Tensor; // [hidden, (heads + 2·kvHeads)·headDim]
  readonly o: tf.Tensor; // [heads·headDim, hidden]
  readonly ffnNorm: tf.Tensor1D; // [hidden]
  readonly gateUp: tf.Tensor; // [hidden, 2·intermediate]
  readonly down: tf.Tensor; // [intermediate, hidden]
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
  /** Formats of qkv, o, gateUp, down (default all 'fp32'); quantized ones in linear weights' row groups of four. */
  readonly formats?: readonly [WeightFormat, WeightFormat, WeightFormat, WeightFormat];
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
