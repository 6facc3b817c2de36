import * as tf from '@tensorflow/tfjs-core';

/** Per-layer K or V tensors of a tensor-backed cache (`null` before the first write). */
export type TensorStore = (tf.Tensor4D | null)[];

/**
 * Replaces every tensor of the stores by `f(tensor)` (kept out of tidy scopes), disposing the old ones: the shared
 * mechanics of reorder, truncate and bucket growth in the tensor-backed caches.
 */
export function mapStores(stores: readonly TensorStore[], f: (t: tf.Tensor4D) => tf.Tensor4D | null): void {
  for (const store of stores) {
    for (let l = 0; l < store.length; l++) {
      const old = store[l];
      if (!old) continue;
      const next = f(old);
      store[l] = next ? tf.keep(next) : null;
      old.dispose();
    }
  }
}

/** Gathers rows (the batch axis) of every tensor: row i becomes row `indices[i]`. */
export function gatherStoreRows(stores: readonly TensorStore[], indices: readonly number[]): void {
  const idx = tf.tensor1d(indices as number[], 'int32');
  try {
    mapStores(stores, (t) => tf.gather(t, idx, 0));
  } finally {
    idx.dispose();
  }
}

/** Independent copies (tfjs clones share data until written, and tensors are never written in place). */
export function cloneStore(store: TensorStore): TensorStore {
  return store.map((t) => (t ? tf.keep(tf.clone(t)) : null));
}

/**
 * K and V of `layer` from tensor stores `[rows, kvHeads, ≥ length, headDim]`, positions `[0, length)`, read back
 * asynchronously (what a tensor-backed storage's `read` returns; empty where nothing is stored yet).
 */
export async function readStores(keys: TensorStore, values: TensorStore, layer: number, length: number): Promise<{ k: Float32Array; v: Float32Array }> {
  const [k, v] = await Promise.all(
    [keys[layer], values[layer]].map(async (t) => {
      if (!t || length === 0) return new Float32Array(0);
      const valid = tf.slice(t, [0, 0, 0, 0], [-1, -1, length, -1]);
      try {
        return ((await valid.data()) as Float32Array).slice(); // a copy that outlives the tensor
      } finally {
        valid.dispose();
      }
    }),
  );
  return { k: k!, v: v! };
}

/** Bytes of float32 K and V the stores hold (what a copy of them writes). */
export function storeBytes(keys: TensorStore, values: TensorStore): number {
  return [...keys, ...values].reduce((sum, t) => sum + 4 * (t?.size ?? 0), 0);
}

/**
 * The power-of-two bucket that holds `n` positions, at most `max` (or `n` past it): what the GPU caches size their
 * fixed-shape storage by, so the storage never holds more than 2× the valid length.
 */
export function bucketFor(n: number, max: number): number {
  let b = 1;
  while (b < n) b *= 2;
  return Math.min(b, Math.max(max, n));
}

/** Disposes every tensor of the stores and empties them. */
export function disposeStores(...stores: TensorStore[]): void {
  for (const store of stores) {
    for (const t of store) t?.dispose();
    store.fill(null);
  }
}
