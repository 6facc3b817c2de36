import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { bucketFor, disposeStores, gatherStoreRows, mapStores, readStores, storeBytes, type TensorStore } from '@kvt/models';
import { KVCacheContainer, type KVCacheOptions, type KVStorage, type WriteContext } from '@kvt/kernels';
import { CacheAttentionProgram, WriteRowsProgram } from './programs.js';

const webgpu = () => tf.backend() as unknown as WebGPUBackend;
/** A program's own uniforms, in the order its `uniforms` declares them. */
const int32Uniforms = (...values: number[]) => values.map((v) => ({ type: 'int32' as const, data: [v] }));

/**
 * The WebGPU backend's K/V storage: per layer K and V `[rows, kvHeads, bucket, headDim]` GPU buffers whose shape stays
 * fixed inside a power-of-two bucket (one pipeline per shape). A forward pass writes its new rows into them in place
 * ({@link WriteRowsProgram}, the cache tensor as the program's output: the bytes written are the new rows'), and
 * attention reads positions `[0, length)` only ({@link CacheAttentionProgram}), not the whole bucket. Crossing a
 * bucket pads into the next one once.
 */
export class WebGPUStorage implements KVStorage {
  private keys: TensorStore;
  private values: TensorStore;
  private bucket = 0;
  /** Per forward pass: each row's left padding, int32 [rows] (shared by every layer). */
  private pads: tf.Tensor1D | null = null;
  /** K/V bytes written since the cache was created (new rows, growth and copies), for benchmarks. */
  bytesWritten = 0;

  constructor(
    private readonly options: KVCacheOptions,
    /** Positions the caller expects (generation passes prompt + maxNewTokens): the first bucket holds them all. */
    private readonly hint = Math.min(options.capacityHint ?? 0, options.maxLength),
  ) {
    this.keys = new Array(options.numLayers).fill(null);
    this.values = new Array(options.numLayers).fill(null);
  }

  get capacity(): number {
    return this.bucket;
  }

  reserve(needed: number, _length: number, rows: number): void {
    const next = bucketFor(this.bucket === 0 ? Math.max(needed, this.hint) : needed, this.options.maxLength);
    mapStores([this.keys, this.values], (t) => tf.pad(t, [[0, 0], [0, 0], [0, next - this.bucket], [0, 0]]));
    const { numKvHeads: kvh, headDim: hd } = this.options;
    for (const store of [this.keys, this.values])
      for (let l = 0; l < store.length; l++) store[l] ??= tf.keep(tf.zeros([rows, kvh, next, hd]) as tf.Tensor4D);
    this.bytesWritten += storeBytes(this.keys, this.values); // the new bucket, padded or zeroed
    this.bucket = next;
  }

  attend(layer: number, q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, at: WriteContext): tf.Tensor4D {
    if (layer === 0) this.beginPass(at);
    const [K, V] = [this.keys[layer]!, this.values[layer]!];
    this.writeRows(K, k, at.start);
    this.writeRows(V, v, at.start);
    const [rows, heads, n] = q.shape;
    const program = new CacheAttentionProgram(q.shape);
    const uniforms = int32Uniforms(at.start, n, at.start + n, heads / this.options.numKvHeads, rows * heads * n);
    const out = webgpu().runWebGPUProgram(program, [q, K, V, this.pads!], 'float32', uniforms);
    if (layer === this.options.numLayers - 1) this.advanced();
    return tf.engine().makeTensorFromTensorInfo(out) as tf.Tensor4D;
  }

  /** rows [rows, kvHeads, n, headDim] into `cache` at positions [start, start + n), in place. */
  private writeRows(cache: tf.Tensor4D, rows: tf.Tensor4D, start: number): void {
    const count = rows.size;
    webgpu().runWebGPUProgram(new WriteRowsProgram(cache.shape, count), [rows], 'float32', int32Uniforms(start, rows.shape[2], count), cache);
    this.bytesWritten += count * 4;
  }

  private beginPass(at: WriteContext): void {
    this.advanced();
    this.pads = tf.keep(tf.tensor1d(at.padding as number[], 'int32'));
  }

  advanced(): void {
    this.pads?.dispose();
    this.pads = null;
  }

  reorder(indices: readonly number[]): void {
    if (indices.every((i, r) => i === r) && indices.length === this.keys[0]?.shape[0]) return; // identity: free
    gatherStoreRows([this.keys, this.values], indices);
    this.bytesWritten += storeBytes(this.keys, this.values);
  }

  // truncate: positions ≥ length are never read, and are written again before they are

  read(layer: number, length: number): Promise<{ k: Float32Array; v: Float32Array }> {
    return readStores(this.keys, this.values, layer, length);
  }

  /** A copy of every buffer (tfjs clones share a buffer, and these are written in place). */
  fork(): WebGPUStorage {
    const copy = new WebGPUStorage(this.options, this.hint);
    const dup = (store: TensorStore): TensorStore => store.map((t) => (t ? tf.keep(tf.tidy(() => tf.add(t, 0) as tf.Tensor4D)) : null));
    copy.keys = dup(this.keys);
    copy.values = dup(this.values);
    copy.bucket = this.bucket;
    this.bytesWritten += storeBytes(this.keys, this.values);
    return copy;
  }

  dispose(): void {
    this.advanced();
    disposeStores(this.keys, this.values);
  }
}

/**
 * The WebGPU backend's KV cache: {@link WebGPUStorage} in the shared container. A decode step writes its K/V rows in
 * place and attends over the valid positions only; shapes stay fixed inside a power-of-two bucket, so no pipeline is
 * compiled after the second decode step.
 *
 * @example
 * ```ts
 * import '@kvt/backend-webgpu';
 * const cache = new WebGPUKVCache({ numLayers: 2, batchSize: 1, numKvHeads: 2, headDim: 8, maxLength: 64 });
 * cache.dispose();
 * ```
 */
export class WebGPUKVCache extends KVCacheContainer<WebGPUStorage> {
  constructor(options: KVCacheOptions) {
    super(options, new WebGPUStorage(options));
  }
}
