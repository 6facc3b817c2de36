/** Additive mask value for positions a query must not see (finite, so fully masked pad rows stay finite). */
export const MASKED = -1e9;

/**
 * Causal + left-padding mask, `[batch, 1, n, total]` row-major: query i of row b sits at position `start + i` and
 * sees keys `padding[b] ≤ j ≤ start + i`.
 */
export function causalPaddingMask(
  padding: readonly number[],
  start: number,
  n: number,
  total: number,
): Float32Array {
  const mask = new Float32Array(padding.length * n * total);
  padding.forEach((pad, b) => {
    for (let i = 0; i < n; i++) {
      const row = (b * n + i) * total;
      const last = start + i;
      for (let j = 0; j < total; j++) if (j < pad || j > last) mask[row + j] = MASKED;
    }
  });
  return mask;
}
