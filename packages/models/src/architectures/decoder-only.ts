import * as tf from '@tensorflow/tfjs-core';
import {
  DisposedError,
  InvalidInputError,
  PromptTooLongError,
  ShapeMismatchError,
  TokenOutOfRangeError,
  type Cache,
  type CreateCacheOptions,
  type DecoderOnlyModel,
  type ForwardOptions,
  type Logits,
  type ModelConfig,
} from '@kvt/core';
import type { KVCache } from '@kvt/kernels';
import { createKVCache } from '../kv-cache/registry.js';

/** Fills shorter rows with `filler` on the left: returns ids `[b, n]` row-major and each row's padding. */
export function leftPad(rows: readonly (readonly number[])[], filler: number): { ids: Int32Array; n: number; padding: number[] } {
  const n = Math.max(...rows.map((r) => r.length));
  const ids = new Int32Array(rows.length * n).fill(filler);
  const padding = rows.map((r, b) => {
    ids.set(r, b * n + (n - r.length));
    return n - r.length;
  });
  return { ids, n, padding };
}

/** Token positions `[b, n]`: position of absolute index `start + i` in row b is `start + i − padding[b]` (≥ 0). */
export function positionIds(padding: readonly number[], start: number, n: number): Int32Array {
  const out = new Int32Array(padding.length * n);
  padding.forEach((pad, b) => {
    for (let i = 0; i < n; i++) out[b * n + i] = Math.max(0, start + i - pad);
  });
  return out;
}

export function checkIds(rows: readonly (readonly number[])[], vocabSize: number, what: string): void {
  if (!Array.isArray(rows) || rows.length === 0) throw new InvalidInputError(`${what}: give at least one row of token ids.`);
  rows.forEach((r, i) => {
    if (!Array.isArray(r) || r.length === 0) throw new InvalidInputError(`${what}[${i}] is empty; give at least one token.`);
    for (const id of r) if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw new TokenOutOfRangeError(id, vocabSize, `${what}[${i}]`);
  });
}

/**
 * Shared by the decoder-only architectures: input checks, left padding of ragged prompts, positions, the cache, and
 * reading logits back. Subclasses give the layers.
 */
export abstract class DecoderOnlyTransformer implements DecoderOnlyModel {
  readonly kind = 'decoder-only' as const;
  abstract readonly config: ModelConfig;
  protected disposed = false;
  protected abstract readonly ownedTensors: readonly tf.Tensor[];

  /** ids `[b, n]`, positions `[b, n]` → final hidden states `[b, n, hidden]`, appending to `cache`. */
  protected abstract hidden(ids: tf.Tensor2D, positions: tf.Tensor2D, cache: KVCache): tf.Tensor3D;
  /** Called before a forward pass that reaches `positions` positions (outside tf.tidy). */
  protected prepare(_positions: number): void {}
  /** hidden `[b, n, hidden]` → logits `[b, n, vocab]`. */
  protected abstract project(h: tf.Tensor3D): tf.Tensor3D;

  createCache(options: CreateCacheOptions): KVCache {
    if (this.disposed) throw new DisposedError('model');
    const c = this.config;
    return createKVCache(
      {
        numLayers: c.numLayers,
        batchSize: options.batchSize,
        numKvHeads: c.numKvHeads,
        headDim: c.headDim,
        maxLength: c.maxPositions,
        ...(options.capacityHint !== undefined ? { capacityHint: options.capacityHint } : {}),
        ...(options.kvDtype !== undefined ? { kvDtype: options.kvDtype } : {}),
      },
      options.kind ?? 'auto',
    );
  }

  async forward(tokenIds: readonly (readonly number[])[], cache: Cache | null, options?: ForwardOptions): Promise<Logits> {
    if (this.disposed) throw new DisposedError('model');
    const c = this.config;
    checkIds(tokenIds, c.vocabSize, 'tokenIds');
    const kv = (cache ?? this.createCache({ batchSize: tokenIds.length, kind: 'concat' })) as KVCache;
    try {
      if (kv.disposed) throw new DisposedError('KV cache');
      if (tokenIds.length !== kv.batchSize)
        throw new ShapeMismatchError('tokenIds', [kv.batchSize, -1], [tokenIds.length, -1], 'one row per cache row');
      const start = kv.length;
      let padded: { ids: Int32Array; n: number; padding: number[] };
      if (start === 0) {
        padded = leftPad(tokenIds, c.specialTokens.pad ?? 0);
        kv.setPadding(padded.padding);
      } else {
        const n = tokenIds[0]!.length;
        if (tokenIds.some((r) => r.length !== n))
          throw new ShapeMismatchError('tokenIds', `[${tokenIds.length}, ${n}]`, `rows of ${tokenIds.map((r) => r.length).join('/')}`, 'after the prefill every row gives the same number of tokens');
        padded = { ids: Int32Array.from(tokenIds.flat()), n, padding: [...kv.padding] };
      }
      const { n } = padded;
      if (start + n > c.maxPositions) throw new PromptTooLongError(start + n, 0, c.maxPositions);
      const b = tokenIds.length;
      const all = options?.logits === 'all';
      this.prepare(start + n);
      const logits = tf.tidy(() => {
        const ids = tf.tensor2d(padded.ids, [b, n], 'int32');
        const positions = tf.tensor2d(positionIds(kv.padding, start, n), [b, n], 'int32');
        const h = this.hidden(ids, positions, kv);
        const last = all || n === 1 ? h : (tf.slice(h, [0, n - 1, 0], [-1, 1, -1]) as tf.Tensor3D);
        return this.project(last);
      });
      kv.advance(n);
      const data = (await logits.data()) as Float32Array;
      logits.dispose();
      return { data, batch: b, positions: all ? n : 1, vocabSize: c.vocabSize };
    } finally {
      if (cache === null) kv.dispose();
    }
  }

  dispose(): void {
    if (this.disposed) return;
    for (const t of new Set(this.ownedTensors)) t.dispose();
    this.disposed = true;
  }
}
