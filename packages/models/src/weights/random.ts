import { createRng } from '@kvt/core';
import type { EncoderDecoderConfig } from '../architectures/encoder-decoder.js';
import type { Gpt2Config } from '../architectures/gpt2.js';
import type { LlamaConfig } from '../architectures/llama.js';
import { ParameterSet } from './host-tensor.js';

/**
 * Seeded random parameters, for tests and benchmarks: uniform in ±1/√fanIn for matrices, 1 ± 0.1 for norm weights,
 * ±0.1 for biases. The same seed gives the same numbers on every platform.
 */
class RandomFiller {
  private readonly rng;
  constructor(
    seed: number,
    readonly params: ParameterSet,
  ) {
    this.rng = createRng(seed);
  }
  private fill(shape: number[], f: () => number) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = f();
    return { data, shape };
  }
  matrix(name: string, shape: [number, number], scale = 1) {
    const a = scale / Math.sqrt(shape[0]);
    this.params.set(name, this.fill(shape, () => (this.rng.next() * 2 - 1) * a));
  }
  normWeight(name: string, dim: number) {
    this.params.set(name, this.fill([dim], () => 1 + (this.rng.next() * 2 - 1) * 0.1));
  }
  bias(name: string, dim: number) {
    this.params.set(name, this.fill([dim], () => (this.rng.next() * 2 - 1) * 0.1));
  }
  layerNorm(name: string, dim: number) {
    this.normWeight(`${name}.weight`, dim);
    this.bias(`${name}.bias`, dim);
  }
}

/**
 * @example
 * ```ts
 * const params = randomLlamaParameters(config, 42, { tied: true });
 * ```
 */
export function randomLlamaParameters(c: LlamaConfig, seed: number, options: { tied?: boolean } = {}): ParameterSet {
  const r = new RandomFiller(seed, new ParameterSet(`random llama (seed ${seed})`));
  const d = c.hiddenSize;
  const hd = c.headDim ?? d / c.numHeads;
  // the embedding is read as rows: scale so the first RMSNorm sees unit-ish activations
  r.matrix('embedding', [c.vocabSize, d], Math.sqrt(c.vocabSize) / Math.sqrt(d) * 0.5);
  for (let i = 0; i < c.numLayers; i++) {
    r.normWeight(`layers.${i}.attentionNorm`, d);
    r.matrix(`layers.${i}.q`, [d, c.numHeads * hd]);
    r.matrix(`layers.${i}.k`, [d, c.numKvHeads * hd]);
    r.matrix(`layers.${i}.v`, [d, c.numKvHeads * hd]);
    r.matrix(`layers.${i}.o`, [c.numHeads * hd, d]);
    r.normWeight(`layers.${i}.ffnNorm`, d);
    r.matrix(`layers.${i}.gate`, [d, c.intermediateSize]);
    r.matrix(`layers.${i}.up`, [d, c.intermediateSize]);
    r.matrix(`layers.${i}.down`, [c.intermediateSize, d]);
  }
  r.normWeight('finalNorm', d);
  if (!options.tied) r.matrix('output', [d, c.vocabSize], 4);
  return r.params;
}

export function randomGpt2Parameters(c: Gpt2Config, seed: number): ParameterSet {
  const r = new RandomFiller(seed, new ParameterSet(`random gpt2 (seed ${seed})`));
  const d = c.hiddenSize;
  const F = c.intermediateSize ?? 4 * d;
  r.matrix('wte', [c.vocabSize, d], Math.sqrt(c.vocabSize) / Math.sqrt(d) * 0.5);
  r.matrix('wpe', [c.maxPositions, d], Math.sqrt(c.maxPositions) / Math.sqrt(d) * 0.2);
  for (let i = 0; i < c.numLayers; i++) {
    r.layerNorm(`layers.${i}.norm1`, d);
    r.matrix(`layers.${i}.qkv`, [d, 3 * d]);
    r.bias(`layers.${i}.qkv.bias`, 3 * d);
    r.matrix(`layers.${i}.out`, [d, d]);
    r.bias(`layers.${i}.out.bias`, d);
    r.layerNorm(`layers.${i}.norm2`, d);
    r.matrix(`layers.${i}.fc`, [d, F]);
    r.bias(`layers.${i}.fc.bias`, F);
    r.matrix(`layers.${i}.proj`, [F, d]);
    r.bias(`layers.${i}.proj.bias`, d);
  }
  r.layerNorm('finalNorm', d);
  return r.params;
}

export function randomEncoderDecoderParameters(
  c: EncoderDecoderConfig,
  seed: number,
  options: { sharedEmbeddings?: boolean; tiedOutput?: boolean; outputBias?: boolean } = {},
): ParameterSet {
  const r = new RandomFiller(seed, new ParameterSet(`random encoder-decoder (seed ${seed})`));
  const d = c.dModel;
  const embScale = c.scaleEmbedding ? 1 / Math.sqrt(d) : 1;
  r.matrix('sourceEmbedding', [c.sourceVocabSize, d], (Math.sqrt(c.sourceVocabSize) / Math.sqrt(d)) * embScale);
  if (!options.sharedEmbeddings) r.matrix('targetEmbedding', [c.targetVocabSize, d], (Math.sqrt(c.targetVocabSize) / Math.sqrt(d)) * embScale);
  if (options.tiedOutput === false) r.matrix('output', [d, c.targetVocabSize], 4);
  if (options.outputBias) r.bias('outputBias', c.targetVocabSize);
  const rows = c.maxPositions + c.positions.offset;
  for (const side of ['encoder', 'decoder'] as const) {
    if (c.positions.kind === 'learned') r.matrix(`${side}.positions`, [rows, d], Math.sqrt(rows) / Math.sqrt(d) * 0.2);
    if (c.embeddingNorm) r.layerNorm(`${side}.embeddingNorm`, d);
    const layers = side === 'encoder' ? c.encoderLayers : c.decoderLayers;
    for (let i = 0; i < layers; i++) {
      const pre = `${side}.layers.${i}`;
      const attention = (a: string) => {
        for (const m of ['q', 'k', 'v', 'o']) {
          r.matrix(`${pre}.${a}.${m}`, [d, d]);
          r.bias(`${pre}.${a}.${m}.bias`, d);
        }
        r.layerNorm(`${pre}.${a}Norm`, d);
      };
      attention('selfAttention');
      if (side === 'decoder') attention('crossAttention');
      r.matrix(`${pre}.ffn.up`, [d, c.ffnDim]);
      r.bias(`${pre}.ffn.up.bias`, c.ffnDim);
      r.matrix(`${pre}.ffn.down`, [c.ffnDim, d]);
      r.bias(`${pre}.ffn.down.bias`, d);
      r.layerNorm(`${pre}.ffnNorm`, d);
    }
    if (side === 'encoder' ? c.encoderFinalNorm : c.decoderFinalNorm) r.layerNorm(`${side}.finalNorm`, d);
  }
  return r.params;
}
