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

/** The format code kvt's kernels take (kvt-kernels.c's FMT_*). */
export function formatCode(format: WeightFormat): number {
  return format === 'fp32' ? 0 : format === 'q8_0' ? 1 : 2;
}
