import type { EncoderState } from './model.js';

/**
 * How a cache stores keys and values: float32, fp16 (half the bytes), or int8 with a scale byte per position and head
 * (the block being filled kept as fp16); attention dequantizes as it reads.
 */
export type KVDtype = 'fp32' | 'fp16' | 'int8';

/** Every K/V storage type, for option checks. */
export const KV_DTYPES: readonly KVDtype[] = ['fp32', 'fp16', 'int8'];

/**
 * The KV cache contract, as seen by generation loops and users. Implementations (the reference concat cache in
 * `@kvt/models`, the backend caches in `@kvt/backend-*`) add the tensor-level `append`/attention methods that
 * models call; the loops only need what is here.
 *
 * A cache holds, for each of `numLayers` layers, the keys and values of `batchSize` sequences:
 * `[batchSize, kvHeads, length, headDim]` of valid data inside `[batchSize, kvHeads, capacity, headDim]` of storage.
 * All sequences share one length (shorter prompts are left-padded and masked).
 *
 * @example
 * ```ts
 * const cache = model.createCache({ batchSize: 2 });
 * await model.forward([[1, 2, 3], [1, 4]], cache); // prefill
 * cache.reorder([1, 1]);                           // keep sequence 1 twice (beam search)
 * cache.truncate(2);                               // roll back to 2 positions
 * const copy = cache.fork();                       // an independent copy
 * copy.dispose(); cache.dispose();
 * ```
 */
export interface Cache {
  /** How K/V are stored: 'fp32', or 'fp16' / 'int8' (per position and head scales) where the backend offers it. */
  readonly kvDtype?: KVDtype;
  /** Number of layers with self-attention K/V. */
  readonly numLayers: number;
  /** Number of sequences (rows) held. */
  readonly batchSize: number;
  /** Positions written per sequence (left padding included). */
  readonly length: number;
  /** Positions the current storage holds before it must grow. */
  readonly capacity: number;
  /** Bytes of K/V storage actually allocated (capacity, not length; blocks shared between rows once). */
  readonly bytes: number;
  /** Paged caches: blocks in use (a shared one once) and blocks shared between rows or with a fork. */
  readonly blocks?: { readonly inUse: number; readonly shared: number } | undefined;
  /** Most positions this cache will ever hold (the model's positions). */
  readonly maxLength: number;
  /**
   * K/V bytes the cache has written since it was created (new rows, growth, copies for a reorder or a fork), where
   * it counts them: what a step costs in writes (a cache that rewrites its whole storage per step shows it here).
   */
  readonly bytesWritten?: number | undefined;
  /** Paged caches: positions per K/V block (rows and forks share whole blocks). */
  readonly blockSize?: number | undefined;
  /** Keep/duplicate/permute sequences: row `i` of the result is row `indices[i]` now. */
  reorder(indices: readonly number[]): void;
  /** Roll back to the first `length` positions. */
  truncate(length: number): void;
  /** An independent copy that can be advanced separately. */
  fork(): Cache;
  /** Release all storage. Idempotent. */
  dispose(): void;
  /** True once disposed. */
  readonly disposed: boolean;
}

/**
 * The cache of an encoder-decoder: a growing self-attention cache plus cross-attention K/V that are projected from
 * the encoder output once and reused by every decoding step. Rows are grouped by source: rows
 * `[s * rowsPerSource, (s + 1) * rowsPerSource)` all read source `s`'s cross-attention K/V (one copy, shared by beams).
 */
export interface EncoderDecoderCache extends Cache {
  /** Number of source sentences whose cross-attention K/V are held. */
  readonly sourceCount: number;
  /** Rows (beams) that read each source. */
  readonly rowsPerSource: number;
  /** Bytes of the cross-attention K/V. */
  readonly crossAttentionBytes: number;
  /** The encoder output the cross-attention K/V come from (`model.encode`'s, not owned by the cache). */
  readonly encoderState: EncoderState;
}
