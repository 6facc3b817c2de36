import * as tf from '@tensorflow/tfjs-core';
import { CacheStateError, DisposedError, type EncoderDecoderCache, type EncoderState } from '@kvt/core';
import type { KVCache } from '@kvt/kernels';

/** Cross-attention keys and values of one decoder layer, projected from the encoder output once. */
export interface CrossKV {
  readonly k: tf.Tensor4D; // [sources, heads, sourceLength, headDim]
  readonly v: tf.Tensor4D; // [sources, heads, sourceLength, headDim]
}

/**
 * An encoder-decoder cache: the decoder's growing self-attention cache (any {@link KVCache}) plus the
 * cross-attention K/V of every layer, held once per source and shared by its `rowsPerSource` rows (beams).
 * The cross K/V are filled by the model on the first decoding step and never change afterwards.
 */
export class EncoderDecoderKVCache implements EncoderDecoderCache {
  private crossKV: CrossKV[] | null = null;
  private isDisposed = false;

  constructor(
    readonly self: KVCache,
    readonly sourceCount: number,
    private groupSize: number,
    /** The encoder state the cross K/V come from (the caller's; not disposed here). */
    readonly encoderState: EncoderState,
  ) {}

  /** Rows (beams) that read each source; a reorder may change it (one row per source fanned out to beams). */
  get rowsPerSource(): number {
    return this.groupSize;
  }

  get numLayers() {
    return this.self.numLayers;
  }
  get batchSize() {
    return this.self.batchSize;
  }
  get length() {
    return this.self.length;
  }
  get capacity() {
    return this.self.capacity;
  }
  get maxLength() {
    return this.self.maxLength;
  }
  get bytes() {
    return this.self.bytes + this.crossAttentionBytes;
  }
  /** The self-attention cache's K/V writes (see `Cache.bytesWritten`); the cross-attention K/V are written once. */
  get bytesWritten() {
    return this.self.bytesWritten;
  }
  get crossAttentionBytes() {
    return (this.crossKV ?? []).reduce((s, c) => s + 4 * (c.k.size + c.v.size), 0);
  }
  get disposed() {
    return this.isDisposed;
  }
  get cross(): readonly CrossKV[] | null {
    return this.crossKV;
  }

  /** Takes ownership of the per-layer cross K/V (keeps them out of any tidy scope). */
  setCross(list: CrossKV[]): void {
    if (this.crossKV) throw new CacheStateError('The cross-attention K/V are already set.');
    for (const c of list) tf.keep(c.k), tf.keep(c.v);
    this.crossKV = list;
  }

  /**
   * Rows may only move within their source's group (beams of one sentence); the groups may grow or shrink together
   * (k rows per source: `indices.length` = k × sources), as when one row per source fans out to its beams.
   */
  reorder(indices: readonly number[]): void {
    this.check();
    const G = this.groupSize;
    const next = indices.length / this.sourceCount;
    if (!Number.isInteger(next) || next < 1)
      throw new CacheStateError(`reorder needs k × ${this.sourceCount} indices (rows stay grouped by source); got ${indices.length}.`);
    indices.forEach((from, to) => {
      if (Math.floor(from / G) !== Math.floor(to / next))
        throw new CacheStateError(`reorder moves row ${from} to ${to}, across sources; rows may only move within a source's beams.`);
    });
    this.self.reorder(indices);
    this.groupSize = next;
  }

  truncate(length: number): void {
    this.check();
    this.self.truncate(length);
  }

  fork(): EncoderDecoderKVCache {
    this.check();
    const copy = new EncoderDecoderKVCache(this.self.fork(), this.sourceCount, this.rowsPerSource, this.encoderState);
    if (this.crossKV) copy.setCross(this.crossKV.map((c) => ({ k: tf.clone(c.k), v: tf.clone(c.v) })));
    return copy;
  }

  dispose(): void {
    if (this.isDisposed) return;
    this.self.dispose();
    for (const c of this.crossKV ?? []) c.k.dispose(), c.v.dispose();
    this.crossKV = null;
    this.isDisposed = true;
  }

  private check(): void {
    if (this.isDisposed) throw new DisposedError('encoder-decoder cache');
  }
}
