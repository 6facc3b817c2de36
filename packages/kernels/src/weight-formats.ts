/**
 * The number format of a linear layer's weights. `fp32`: float32, held as kvt's columns `[in, out]` (a tfjs tensor
 * any backend multiplies) or, where the backend multiplies rows faster (see `Backend.float32Layout`), as rows
 * `[out, in]` in blocks of 16 floats (64 bytes). The other formats keep GGUF's layouts: rows `[out, in]`, each row
 * blocks of 32 values along `in` — `fp16`: 32 IEEE halves (64 bytes, GGUF's F16); `q8_0`: an fp16 scale and 32 int8
 * (34 bytes); `q4_0`: an fp16 scale and 16 bytes of 4-bit values, value = scale × (nibble − 8) (18 bytes; low nibbles
 * hold values 0…15 of the block, high nibbles 16…31) — or super-blocks of 256 values: `q4_k` (GGUF's Q4_K, 144 bytes):
 * fp16 `d` and `dmin`, 12 bytes packing eight 6-bit scales `sc` and eight 6-bit mins `m` (one per 32 values), then 128
 * bytes of nibbles (bytes 32k…32k+31 hold values 64k…64k+31 in their low nibbles, the next 32 in their high ones);
 * value = d·sc·nibble − dmin·m. A weight held as rows lives in an `int32` tensor of its raw bytes (padded to a
 * multiple of 4).
 *
 * @example
 * ```ts
 * bytesPerRow('q8_0', 4096); // 4352
 * ```
 */
export type WeightFormat = 'fp32' | 'fp16' | 'q8_0' | 'q4_0' | 'q4_k';

/** Every weight format, for option checks. */
export const WEIGHT_FORMATS: readonly WeightFormat[] = ['fp32', 'fp16', 'q8_0', 'q4_0', 'q4_k'];

/** The formats held as blocks of raw bytes (quantized, or half precision). */
export const QUANTIZED_FORMATS = ['q8_0', 'q4_0', 'q4_k', 'fp16'] as const;
export type QuantizedFormat = (typeof QUANTIZED_FORMATS)[number];

/** The formats a weight can be held in as rows of blocks (a `BlockWeight`): the quantized ones and float32 rows. */
export type BlockFormat = QuantizedFormat | 'fp32';

/** Values per quantization block (q8_0, q4_0, fp16; q4_k's sub-blocks). */
export const BLOCK = 32;

/** Values per block of a format held as rows: 32 ({@link BLOCK}), 256 for q4_k's super-blocks, 16 for float32 rows (a cache line). */
export function blockValues(format: BlockFormat): number {
  return format === 'fp32' ? 16 : format === 'q4_k' ? 256 : BLOCK;
}

/** Bytes of one block. */
export function blockBytes(format: BlockFormat): number {
  return format === 'q8_0' ? 34 : format === 'q4_0' ? 18 : format === 'q4_k' ? 144 : 64;
}

/** Bytes of one row of `inDim` values (inDim a multiple of the format's block). */
export function bytesPerRow(format: BlockFormat, inDim: number): number {
  return (inDim / blockValues(format)) * blockBytes(format);
}

/**
 * Rows per group in the memory layout of a weight held as rows. `1`: rows one after another, as GGUF stores them.
 * `4`: how kvt's models hold them (linear weights, and tables that are also a tied output projection) — rows
 * in groups of four whose blocks interleave (block b of rows 4g…4g+3 side by side), so a decode step's
 * matrix-vector kernel reads the weight strictly in order while it computes four outputs at once; the last
 * `outDim % 4` rows follow one after another. Same blocks, same bytes. Kernels read both.
 */
export type RowGroup = 1 | 4;

/** The row group of kvt's models' weights held as rows (see {@link RowGroup}). */
export const LINEAR_ROW_GROUP: RowGroup = 4;

/** The format code kvt's kernels take for float32 weights held as columns `[in, out]` (kvt-kernels.c's FMT_F32). */
export const FLOAT32_COLUMNS_CODE = 0;

/**
 * The format code kvt's kernels take for a weight held as rows (kvt-kernels.c's FMT_*, with FMT_GROUP4 for row groups
 * of four); float32 columns take {@link FLOAT32_COLUMNS_CODE}.
 */
export function formatCode(format: BlockFormat, rowGroup: RowGroup = 1): number {
  return { fp32: 4, q8_0: 1, q4_0: 2, fp16: 3, q4_k: 5 }[format] | (rowGroup === 4 ? 16 : 0);
}

/**
 * Where row `o` of a weight held as rows `[outDim, inDim]` lies in the layout of `rowGroup`: the byte offset of its
 * first block, and the bytes from one of its blocks to the next.
 */
export function rowPlacement(format: BlockFormat, inDim: number, outDim: number, rowGroup: RowGroup, o: number): { start: number; step: number } {
  const size = blockBytes(format);
  const row = bytesPerRow(format, inDim);
  const grouped = rowGroup === 4 ? outDim - (outDim % 4) : 0;
  if (o < grouped) return { start: (o - (o % 4)) * row + (o % 4) * size, step: 4 * size };
  return { start: o * row, step: size };
}

/**
 * Rows `[outDim, inDim]` in GGUF's order (a row's blocks one after another; given whole, or in parts of whole rows
 * that follow each other) in the layout of `rowGroup`, padded to a multiple of 4 bytes (the bytes of an int32
 * tensor); written into `out` when given (where the backend keeps the weight: no copy in between).
 *
 * @example
 * ```ts
 * const packed = groupRows(rows, 'q8_0', 768, 2048, 4);
 * ```
 */
export function groupRows(
  rows: Uint8Array | readonly Uint8Array[],
  format: BlockFormat,
  inDim: number,
  outDim: number,
  rowGroup: RowGroup,
  out: Uint8Array = new Uint8Array(Math.ceil((outDim * bytesPerRow(format, inDim)) / 4) * 4),
): Uint8Array {
  const parts = rows instanceof Uint8Array ? [rows] : rows;
  const size = blockBytes(format);
  const row = bytesPerRow(format, inDim);
  const blocks = inDim / blockValues(format);
  let o = 0;
  for (const part of parts) {
    if (rowGroup === 1) out.set(part, o * row);
    else
      for (let r = 0; r < part.byteLength / row; r++) {
        const { start, step } = rowPlacement(format, inDim, outDim, rowGroup, o + r);
        for (let b = 0; b < blocks; b++) out.set(part.subarray(r * row + b * size, r * row + (b + 1) * size), start + b * step);
      }
    o += part.byteLength / row;
  }
  return out;
}
