/**
 * How a linear layer's weights are held. `fp32`: float32 `[in, out]` (kvt's layout). The quantized formats keep GGUF's
 * layouts: rows `[out, in]`, each row blocks of 32 values along `in` — `q8_0`: an fp16 scale and 32 int8 (34 bytes),
 * `q4_0`: an fp16 scale and 16 bytes of 4-bit values, value = scale × (nibble − 8) (18 bytes; low nibbles hold values
 * 0…15 of the block, high nibbles 16…31). A quantized weight lives in an `int32` tensor of its raw bytes (padded to a
 * multiple of 4).
 *
 * @example
 * ```ts
 * bytesPerRow('q8_0', 4096); // 4352
 * ```
 */
export type WeightFormat = 'fp32' | 'q8_0' | 'q4_0';

/** The quantized formats. */
export const QUANTIZED_FORMATS = ['q8_0', 'q4_0'] as const;
export type QuantizedFormat = (typeof QUANTIZED_FORMATS)[number];

/** Values per quantization block. */
export const BLOCK = 32;

/** Bytes of one quantization block. */
export function blockBytes(format: QuantizedFormat): number {
  return format === 'q8_0' ? 34 : 18;
}

/** Bytes of one row of `inDim` values (inDim a multiple of 32). */
export function bytesPerRow(format: QuantizedFormat, inDim: number): number {
  return (inDim / BLOCK) * blockBytes(format);
}

/**
 * Rows per group in a quantized weight's memory layout. `1`: rows one after another, as GGUF stores them. `4`: how
 * kvt's models hold quantized weights (linear weights, and tables that are also a tied output projection) — rows
 * in groups of four whose blocks interleave (block b of rows 4g…4g+3 side by side), so a decode step's
 * matrix-vector kernel reads the weight strictly in order while it computes four outputs at once; the last
 * `outDim % 4` rows follow one after another. Same blocks, same bytes. Kernels read both.
 */
export type RowGroup = 1 | 4;

/** The row group of kvt's models' quantized weights (see {@link RowGroup}). */
export const LINEAR_ROW_GROUP: RowGroup = 4;

/** The format code kvt's kernels take (kvt-kernels.c's FMT_*, with FMT_GROUP4 for row groups of four). */
export function formatCode(format: WeightFormat, rowGroup: RowGroup = 1): number {
  return (format === 'fp32' ? 0 : format === 'q8_0' ? 1 : 2) | (format !== 'fp32' && rowGroup === 4 ? 16 : 0);
}

/**
 * Where row `o` of a quantized weight `[outDim, inDim]` lies in the layout of `rowGroup`: the byte offset of its first
 * block, and the bytes from one of its blocks to the next.
 */
export function rowPlacement(format: QuantizedFormat, inDim: number, outDim: number, rowGroup: RowGroup, o: number): { start: number; step: number } {
  const size = blockBytes(format);
  const row = bytesPerRow(format, inDim);
  const grouped = rowGroup === 4 ? outDim - (outDim % 4) : 0;
  if (o < grouped) return { start: (o - (o % 4)) * row + (o % 4) * size, step: 4 * size };
  return { start: o * row, step: size };
}

/**
 * GGUF-ordered quantized rows `[outDim, inDim]` in the layout of `rowGroup`, padded to a multiple of 4 bytes (the
 * bytes of an int32 tensor).
 *
 * @example
 * ```ts
 * const packed = groupRows(rows, 'q8_0', 768, 2048, 4);
 * ```
 */
export function groupRows(rows: Uint8Array, format: QuantizedFormat, inDim: number, outDim: number, rowGroup: RowGroup): Uint8Array {
  const out = new Uint8Array(Math.ceil(rows.byteLength / 4) * 4);
  if (rowGroup === 1) {
    out.set(rows);
    return out;
  }
  const size = blockBytes(format);
  const row = bytesPerRow(format, inDim);
  const blocks = inDim / BLOCK;
  for (let o = 0; o < outDim; o++) {
    const { start, step } = rowPlacement(format, inDim, outDim, rowGroup, o);
    for (let b = 0; b < blocks; b++) out.set(rows.subarray(o * row + b * size, o * row + (b + 1) * size), start + b * step);
  }
  return out;
}
