import * as tf from '@tensorflow/tfjs-core';
import type { KVCache } from './kv-cache.js';
import type { KVStorage, WriteContext } from './kv-cache-container.js';
import { KvtCacheAttend, KvtGatherRows, KvtLinear, KvtLlamaBlock, KvtRmsNorm, type KvtKernelName } from './kernel-names.js';
import { registeredBackend } from './backend.js';
import { FLOAT32_COLUMNS_CODE, LINEAR_ROW_GROUP, bytesPerRow, formatCode, groupRows, type BlockFormat, type RowGroup } from './weight-formats.js';

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

/**
 * A weight held as rows: raw bytes (an int32 tensor) of rows `[outDim, inDim]` in blocks of `format` (quantized, fp16,
 * or float32 rows), laid out by `rowGroup`.
 */
export interface BlockWeight {
  readonly w: tf.Tensor1D; // int32 [ceil(outDim · bytesPerRow / 4)]
  readonly format: BlockFormat;
  readonly inDim: number;
  readonly outDim: number;
  readonly rowGroup: RowGroup;
}

/**
 * An int32 tensor of `bytes / 4` values whose bytes `fill` writes: where the active backend keeps them when it offers
 * that (`Backend.tensorFromBytes`: wasm writes into its heap), else into a JavaScript array the backend takes. Large
 * weights so pass through JavaScript at most once.
 *
 * @example
 * ```ts
 * const t = tensorFromBytes(8, (out) => out.set([1, 0, 0, 0, 2, 0, 0, 0])); // int32 [1, 2]
 * ```
 */
export function tensorFromBytes(bytes: number, fill: (out: Uint8Array) => void): tf.Tensor1D {
  const own = registeredBackend()?.tensorFromBytes;
  if (own) return own(bytes, fill);
  const values = new Int32Array(bytes / 4);
  fill(new Uint8Array(values.buffer));
  return tf.tensor1d(values, 'int32');
}

/**
 * Uploads rows `[outDim, inDim]` in GGUF's order (quantized, fp16, or the bytes of float32 rows; whole, or in parts
 * of whole rows) as a {@link BlockWeight} in the layout of `rowGroup` (default: linear weights' row groups of four;
 * tables that rows are gathered from take 1), grouped straight into the backend's tensor ({@link tensorFromBytes}).
 *
 * @example
 * ```ts
 * const w = blockWeight(quantizeRows(rows, 2048, 768, 'q8_0'), 'q8_0', 768, 2048);
 * const y = runLinear(x, w); // x [m, 768] → [m, 2048]
 * ```
 */
export function blockWeight(
  rows: Uint8Array | readonly Uint8Array[],
  format: BlockFormat,
  inDim: number,
  outDim: number,
  rowGroup: RowGroup = LINEAR_ROW_GROUP,
): BlockWeight {
  const bytes = Math.ceil((outDim * bytesPerRow(format, inDim)) / 4) * 4;
  const w = tensorFromBytes(bytes, (out) => groupRows(rows, format, inDim, outDim, rowGroup, out));
  return { w, format, inDim, outDim, rowGroup };
}

/**
 * `KvtLinear`'s attributes: how the weight is held (float32 columns `[in, out]`, a tfjs tensor; or rows, a
 * {@link BlockWeight}), and for rows their format and row group.
 */
export interface LinearAttrs {
  readonly layout: 'columns' | 'rows';
  readonly format: BlockFormat;
  readonly inDim: number;
  readonly outDim: number;
  readonly rowGroup: RowGroup;
}

/**
 * The format code kvt's kernels take for a linear weight: {@link FLOAT32_COLUMNS_CODE} for a float32 tensor
 * `[in, out]`, else {@link formatCode} of the rows.
 *
 * @example
 * ```ts
 * weightCode(tf.zeros([288, 288]) as tf.Tensor2D); // 0
 * ```
 */
export function weightCode(w: tf.Tensor2D | BlockWeight): number {
  return w instanceof tf.Tensor ? FLOAT32_COLUMNS_CODE : formatCode(w.format, w.rowGroup);
}

/**
 * x `[m, in]` · w → `[m, out]` by the backend's {@link KvtLinear}: w float32 `[in, out]`, or a {@link BlockWeight}.
 * Null where the backend has no such kernel (float32: the caller uses tf.matMul; quantized weights are only built on
 * backends that have it).
 */
export function runLinear(x: tf.Tensor2D, w: tf.Tensor2D | BlockWeight): tf.Tensor2D | null {
  if (!hasKernel(KvtLinear)) return null;
  if (w instanceof tf.Tensor) {
    const columns: LinearAttrs = { layout: 'columns', format: 'fp32', inDim: w.shape[0], outDim: w.shape[1], rowGroup: 1 };
    return run<tf.Tensor2D>(KvtLinear, { x, w }, columns);
  }
  const attrs: LinearAttrs = { layout: 'rows', format: w.format, inDim: w.inDim, outDim: w.outDim, rowGroup: w.rowGroup };
  return run<tf.Tensor2D>(KvtLinear, { x, w: w.w }, attrs);
}

/** `KvtGatherRows`' attributes: the table's format, its row length and row count, and its row group. */
export interface GatherRowsAttrs {
  readonly format: BlockFormat;
  readonly dim: number;
  readonly rows: number;
  readonly rowGroup: RowGroup;
}

/**
 * Rows `ids` `[n]` (int32) of a table held as rows (`[vocab, dim]`) as float32 `[n, dim]`, by {@link KvtGatherRows}:
 * an embedding lookup in a table that is also a tied output projection.
 */
export function runGatherRows(table: BlockWeight, ids: tf.Tensor1D): tf.Tensor2D {
  const attrs: GatherRowsAttrs = { format: table.format, dim: table.inDim, rows: table.outDim, rowGroup: table.rowGroup };
  return run<tf.Tensor2D>(KvtGatherRows, { table: table.w, ids }, attrs);
}

/** RMSNorm of x `[m, d]` by the backend's {@link KvtRmsNorm}, or null where it has none. */
export function runRmsNorm(x: tf.Tensor2D, weight: tf.Tensor1D, epsilon: number): tf.Tensor2D | null {
  return hasKernel(KvtRmsNorm) ? run<tf.Tensor2D>(KvtRmsNorm, { x, weight }, { epsilon }) : null;
}

/**
 * The tensors of one Llama block. Linear weights are float32 columns `[in, out]` (kvt's layout) or rows `[out, in]`
 * (raw bytes; their format codes in {@link LlamaBlockAttrs.weightCodes}).
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
  /** {@link weightCode} of qkv, o, gateUp, down (default: all float32 columns). */
  readonly weightCodes?: readonly [number, number, number, number];
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
