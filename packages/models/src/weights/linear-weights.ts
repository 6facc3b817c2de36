import * as tf from '@tensorflow/tfjs-core';
import { BLOCK, LINEAR_ROW_GROUP, quantizedWeight, supportsWeightFormat, type QuantizedFormat, type QuantizedWeight, type WeightFormat } from '@kvt/kernels';
import type { ParameterSet } from './host-tensor.js';
import { quantizeRows } from './quantize.js';

/** A linear layer's weight as the backend multiplies it: float32 `[in, out]`, or quantized rows `[out, in]`. */
export type LinearWeight = tf.Tensor2D | QuantizedWeight;

/** The format of a linear weight. */
export function formatOf(w: LinearWeight): WeightFormat {
  return w instanceof tf.Tensor ? 'fp32' : w.format;
}

/** Bytes a linear weight holds. */
export function weightBytes(w: LinearWeight): number {
  return w instanceof tf.Tensor ? w.size * 4 : w.w.size * 4;
}

const warned = new Set<string>();

/**
 * Uploads an architecture's linear weights in the format asked for: `fp32` (kvt's `[in, out]`), `q8_0` or `q4_0`
 * (rows quantized at load, or kept as a file stored them), or, with no format given, as stored (quantized entries
 * stay quantized). Rows whose length is not a multiple of 32 stay float32; where the active backend cannot multiply
 * a quantized format, the weights are dequantized to float32 and a warning says so.
 *
 * @example
 * ```ts
 * const weights = new LinearWeights(params, 'q8_0', keep);
 * const qkv = weights.linear(['layers.0.q', 'layers.0.k', 'layers.0.v'], 288, [288, 288, 288]);
 * ```
 */
export class LinearWeights {
  constructor(
    private readonly p: ParameterSet,
    private readonly format: WeightFormat | undefined,
    /** Takes ownership of an uploaded tensor (the model disposes it). */
    private readonly keep: <T extends tf.Tensor>(t: T) => T,
  ) {}

  /** The format a group of weights with rows of `inDim` values gets. */
  private target(names: readonly string[], inDim: number): WeightFormat {
    const stored = names.map((n) => this.p.quantized(n)?.format);
    const wanted: WeightFormat = this.format ?? (stored.every((f) => f !== undefined && f === stored[0]) ? stored[0]! : 'fp32');
    if (wanted === 'fp32' || inDim % BLOCK !== 0) return 'fp32';
    if (!supportsWeightFormat(wanted)) {
      const backend = tf.getBackend();
      if (!warned.has(backend + wanted))
        console.warn(
          `kvt: the ${backend} backend, as registered, multiplies float32 weights only; ${wanted} weights were dequantized to float32 at load. ` +
            '@kvt/backend-wasm and @kvt/backend-cpu multiply q8_0 and q4_0 as stored.',
        );
      warned.add(backend + wanted);
      return 'fp32';
    }
    return wanted;
  }

  /** Weights `names`, each `[inDim, outs[i]]` in kvt's layout, side by side along out (a fused projection). */
  linear(names: readonly string[], inDim: number, outs: readonly number[]): LinearWeight {
    const format = this.target(names, inDim);
    if (format === 'fp32') {
      const parts = names.map((n, i) => this.p.take(n, [inDim, outs[i]!]));
      return this.keep(tf.tidy(() => (parts.length === 1 ? tf.tensor2d(parts[0]!.data, [inDim, outs[0]!]) : tf.concat(parts.map((h) => tf.tensor2d(h.data, [...h.shape] as [number, number])), 1))) as tf.Tensor2D);
    }
    const rows = names.map((n, i) => this.rows(n, inDim, outs[i]!, format));
    return this.upload(concatBytes(rows), format, inDim, outs.reduce((a, b) => a + b, 0));
  }

  /**
   * A table `[rows, cols]` in kvt's layout (an embedding) as quantized rows in the format asked for, or undefined
   * when it stays float32: a tied output projection multiplies these rows, and lookups gather them.
   */
  table(name: string, rows: number, cols: number): QuantizedWeight | undefined {
    const format = this.target([name], cols);
    if (format === 'fp32') return undefined;
    const q = this.p.quantized(name);
    const bytes = q && q.format === format && !q.transposed && q.rows === rows && q.cols === cols ? q.bytes : quantizeRows(this.p.take(name, [rows, cols]).data, rows, cols, format);
    return this.upload(bytes, format, cols, rows);
  }

  /** Quantized rows `[out, in]` of a `[in, out]` weight. */
  private rows(name: string, inDim: number, outDim: number, format: QuantizedFormat): Uint8Array {
    const q = this.p.quantized(name);
    if (q && q.format === format && q.transposed && q.rows === outDim && q.cols === inDim) return q.bytes;
    return quantizeRows(this.p.takeTransposed(name, [inDim, outDim]).data, outDim, inDim, format);
  }

  /** Uploads GGUF-ordered rows in linear weights' row groups of four (see `RowGroup`). */
  private upload(bytes: Uint8Array, format: QuantizedFormat, inDim: number, outDim: number): QuantizedWeight {
    const q = quantizedWeight(bytes, format, inDim, outDim, LINEAR_ROW_GROUP);
    this.keep(q.w);
    return q;
  }
}

function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(parts.reduce((s, p) => s + p.byteLength, 0));
  let at = 0;
  for (const p of parts) out.set(p, at), (at += p.byteLength);
  return out;
}
