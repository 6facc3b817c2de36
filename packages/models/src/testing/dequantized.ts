import { BLOCK, blockValues, type QuantizedFormat } from '@kvt/kernels';
import type { LlamaConfig } from '../architectures/llama.js';
import { ParameterSet, hostTensor, transpose2d } from '../weights/host-tensor.js';
import { dequantizeRows, quantizeRows } from '../weights/quantize.js';

/**
 * The float32 values a Llama model built with `{ weights: format }` multiplies: each linear weight whose rows hold a
 * multiple of 32 values quantized by rows and dequantized (q4_k: rows not a multiple of 256 as q4_0), and a tied
 * embedding (the output projection's rows) too.
 * A model built from these is the float32 reference of the quantized one: they differ by float rounding only.
 *
 * @example
 * ```ts
 * const reference = LlamaModel.fromParameters(config, dequantizedLlamaParameters(randomLlamaParameters(config, 1), config, 'q8_0'));
 * ```
 */
export function dequantizedLlamaParameters(p: ParameterSet, c: LlamaConfig, format: QuantizedFormat): ParameterSet {
  const out = new ParameterSet(`${p.source}, ${format} round trip`);
  // q4_k rows that are not whole super-blocks are q4_0 (as LinearWeights holds them)
  const roundTrip = (rows: Float32Array, n: number, cols: number) => {
    const f = format === 'q4_k' && cols % blockValues('q4_k') !== 0 ? 'q4_0' : format;
    return dequantizeRows(quantizeRows(rows, n, cols, f), n, cols, f);
  };
  const linear = new Set(['output']);
  for (let i = 0; i < c.numLayers; i++) for (const w of ['q', 'k', 'v', 'o', 'gate', 'up', 'down']) linear.add(`layers.${i}.${w}`);
  for (const name of p.names()) {
    const t = p.get(name);
    const [a, b] = t.shape as [number, number];
    if (linear.has(name) && a % BLOCK === 0) {
      // [in, out]: quantized as rows [out, in]
      out.set(name, transpose2d(hostTensor(roundTrip(transpose2d(t).data, b, a), [b, a])));
    } else if (name === 'embedding' && !p.has('output') && b % BLOCK === 0) {
      out.set(name, hostTensor(roundTrip(t.data, a, b), t.shape));
    } else out.set(name, t);
  }
  return out;
}
