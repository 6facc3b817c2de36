import * as tf from '@tensorflow/tfjs-core';
import { InvalidOptionError } from '@kvt/core';
import { BLOCK, LINEAR_ROW_GROUP, blockBytes, blockValues, blockWeight, float32Layout, supportsWeightFormat, type BlockFormat, type BlockWeight, type WeightFormat } from '@kvt/kernels';
import type { ParameterSet } from './host-tensor.js';
import { quantizeRows } from './quantize.js';

/** A linear layer's weight as the backend multiplies it: float32 columns `[in, out]`, or rows `[out, in]`. */
export type LinearWeight = tf.Tensor2D | BlockWeight;

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
 * Uploads an architecture's linear weights in the format asked for: `fp32`, `fp16`, `q8_0`, `q4_0` or `q4_k` (rows
 * converted at load, or kept as a file stored them), or, with no format given, as stored (quantized entries stay
 * quantized). Float32 weights are kvt's columns `[in, out]`, or rows in groups of four where the backend multiplies
 * those faster ({@link float32Layout}). Rows whose length is not a multiple of 32 stay float32 columns, and `q4_k` rows
 * that are not a multiple of 256 become `q4_0` (llama.cpp's quantize also falls back for them); where the active
 * backend cannot multiply a format, the weights are dequantized to float32 and a warning says so.
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

  /** The format a group of weights with rows of `inDim` values gets: float32 columns, or rows of a format. */
  private target(names: readonly string[], inDim: number): BlockFormat | 'columns' {
    const stored = names.map((n) => this.p.quantized(n)?.format);
    const asked: WeightFormat = this.format ?? (stored.every((f) => f !== undefined && f === stored[0]) ? stored[0]! : 'fp32');
    const wanted: WeightFormat = asked === 'q4_k' && inDim % blockValues('q4_k') !== 0 ? 'q4_0' : asked;
    if (wanted === 'fp32' || inDim % BLOCK !== 0) return float32Layout() === 'rows' && inDim % blockValues('fp32') === 0 ? 'fp32' : 'columns';
    if (!supportsWeightFormat(wanted)) {
      const backend = tf.getBackend();
      if (!warned.has(backend + wanted))
        console.warn(
          `kvt: the ${backend} backend, as registered, multiplies float32 weights only; ${wanted} weights were dequantized to float32 at load. ` +
            '@kvt/backend-wasm and @kvt/backend-cpu multiply q8_0, q4_0, q4_k and fp16 as stored.',
        );
      warned.add(backend + wanted);
      return 'columns';
    }
    return wanted;
  }

  /** Weights `names`, each `[inDim, outs[i]]` in kvt's layout, side by side along out (a fused projection). */
  linear(names: readonly string[], inDim: number, outs: readonly number[]): LinearWeight {
    const format = this.target(names, inDim);
    if (format === 'columns') {
      const parts = names.map((n, i) => this.p.take(n, [inDim, outs[i]!]));
      return this.keep(tf.tidy(() => (parts.length === 1 ? tf.tensor2d(parts[0]!.data, [inDim, outs[0]!]) : tf.concat(parts.map((h) => tf.tensor2d(h.data, [...h.shape] as [number, number])), 1))) as tf.Tensor2D);
    }
    const rows = names.map((n, i) => this.rows(n, inDim, outs[i]!, format));
    return this.upload(rows, format, inDim, outs.reduce((a, b) => a + b, 0), names);
  }

  /**
   * A table `[rows, cols]` in kvt's layout (an embedding) as rows in the format asked for, or undefined when it stays
   * float32 columns: a tied output projection multiplies these rows, and lookups gather them.
   */
  table(name: string, rows: number, cols: number): BlockWeight | undefined {
    const format = this.target([name], cols);
    if (format === 'columns') return undefined;
    const q = this.p.quantized(name);
    const bytes = q && q.format === format && !q.transposed && q.rows === rows && q.cols === cols ? q.bytes : rowBytes(this.p.take(name, [rows, cols]).data, rows, cols, format);
    return this.upload([bytes], format, cols, rows, [name]);
  }

  /** Rows `[out, in]` in `format` of a `[in, out]` weight. */
  private rows(name: string, inDim: number, outDim: number, format: BlockFormat): Uint8Array {
    const q = this.p.quantized(name);
    if (q && q.format === format && q.transposed && q.rows === outDim && q.cols === inDim) return q.bytes;
    return rowBytes(this.p.takeTransposed(name, [inDim, outDim]).data, outDim, inDim, format);
  }

  /**
   * Uploads rows in GGUF's order in linear weights' row groups of four (see `RowGroup`). Halves are checked to be
   * finite first (fp16 values, q8_0/q4_0 block scales, q4_k's d and dmin): the kernels widen finite halves only, and
   * a value beyond ±65504 (converted) or an inf or NaN in the file would otherwise compute silently wrong.
   */
  private upload(parts: readonly Uint8Array[], format: BlockFormat, inDim: number, outDim: number, names: readonly string[]): BlockWeight {
    if (format !== 'fp32')
      for (const bytes of parts) {
        // fp16: every half; q8_0, q4_0: the scale opening each block; q4_k: d and dmin (a half's exponent bits: 0x7c of its high byte)
        const step = format === 'fp16' ? 2 : blockBytes(format);
        const inf = (i: number) => (bytes[i + 1]! & 0x7c) === 0x7c;
        for (let i = 0; i < bytes.length; i += step)
          if (inf(i) || (format === 'q4_k' && inf(i + 2)))
            throw new InvalidOptionError(
              'weights',
              format,
              format === 'fp16'
                ? `weights within fp16's range (±65504): ${names.join(', ')} holds inf, NaN or a larger value; load it with weights: 'fp32' or 'q8_0'`
                : `${format} blocks with finite scales: ${names.join(', ')} has a block scale of inf or NaN (weights beyond what ${format}'s fp16 scales reach, or a damaged file); load it with weights: 'fp32'`,
            );
      }
    const q = blockWeight(parts, format, inDim, outDim, LINEAR_ROW_GROUP);
    this.keep(q.w);
    return q;
  }
}

/** Float32 rows `[rows, cols]` as the bytes of `format`'s blocks. */
function rowBytes(data: Float32Array, rows: number, cols: number, format: BlockFormat): Uint8Array {
  return format === 'fp32' ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : quantizeRows(data, rows, cols, format);
}

