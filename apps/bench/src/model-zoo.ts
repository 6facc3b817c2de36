/**
 * The models the harness knows by name: the real stories260K fixture, and seeded random-weight models of standard
 * shapes (same seed, same weights, on every backend and machine).
 */
import { InvalidOptionError, type DecoderOnlyModel, type EncoderDecoderModel, type Tokenizer } from '@kvt/core';
import {
  EncoderDecoderTransformer,
  Gpt2Model,
  LlamaModel,
  randomEncoderDecoderParameters,
  randomGpt2Parameters,
  randomLlamaParameters,
  type EncoderDecoderConfig,
  type Gpt2Config,
  type LlamaConfig,
} from '@kvt/models';
import type { ModelSource, WeightFormat } from '@kvt/loaders';

export type BenchModel = DecoderOnlyModel | EncoderDecoderModel;

/** A built model, and its tokenizer where it has one (real checkpoints): the pipeline-overhead run decodes text. */
export interface BuiltModel {
  readonly model: BenchModel;
  readonly tokenizer?: Tokenizer | undefined;
}

export interface ModelSpec {
  readonly name: string;
  readonly description: string;
  readonly parameters: string;
  /**
   * Builds the model on the active backend; `fixture` resolves a path under the shared fixtures; `weights`: the
   * format of the linear weights (absent: as stored).
   */
  build(fixture: (path: string) => ModelSource, weights?: WeightFormat): Promise<BuiltModel>;
}

const llama = (name: string, dim: number, hidden: number, layers: number, heads: number, params: string): ModelSpec => ({
  name,
  description: `Llama, dim ${dim}, hidden ${hidden}, ${layers} layers, ${heads} heads, vocab 32000 (seeded random weights)`,
  parameters: params,
  build: async (_fixture, weights) => {
    const c: LlamaConfig = {
      architecture: 'llama', vocabSize: 32000, hiddenSize: dim, intermediateSize: hidden, numLayers: layers, numHeads: heads,
      numKvHeads: heads, maxPositions: 2048, specialTokens: { bos: 1, eos: [2] },
    };
    return { model: LlamaModel.fromParameters(c, randomLlamaParameters(c, 1234, { tied: false }), weights ? { weights } : {}) };
  },
});

export const MODELS: Record<string, ModelSpec> = {
  stories260k: {
    name: 'stories260k',
    description: "Karpathy's stories260K (real weights, llama2.c format), dim 64, 5 layers, 8 heads / 4 kv heads",
    parameters: '260K',
    build: async (fixture, weights) => {
      const { loadModel } = await import('@kvt/loaders');
      const loaded = await loadModel(fixture('stories260K/stories260K.bin'), weights ? { weights } : {});
      return { model: loaded.model, tokenizer: loaded.tokenizer };
    },
  },
  'llama-15m': llama('llama-15m', 288, 768, 6, 6, '15M'),
  'llama-110m': llama('llama-110m', 768, 2048, 12, 12, '110M'),
  'gpt2-124m': {
    name: 'gpt2-124m',
    description: 'GPT-2 small: d 768, 12 layers, 12 heads, vocab 50257 (seeded random weights)',
    parameters: '124M',
    build: async (_fixture, weights) => {
      const c: Gpt2Config = { architecture: 'gpt2', vocabSize: 50257, hiddenSize: 768, numLayers: 12, numHeads: 12, maxPositions: 1024, specialTokens: { eos: [50256] } };
      return { model: Gpt2Model.fromParameters(c, randomGpt2Parameters(c, 1234), weights ? { weights } : {}) };
    },
  },
  'marian-base': {
    name: 'marian-base',
    description: 'Marian encoder-decoder: d 512, 6+6 layers, 8 heads, FFN 2048, vocab 58101 (seeded random weights)',
    parameters: '74M',
    build: async (_fixture, weights) => {
      const c: EncoderDecoderConfig = {
        architecture: 'encoder-decoder', dModel: 512, numHeads: 8, encoderLayers: 6, decoderLayers: 6, ffnDim: 2048,
        sourceVocabSize: 58101, targetVocabSize: 58101, maxPositions: 1024, normPlacement: 'post', activation: 'silu',
        positions: { kind: 'sinusoidal', layout: 'concat', denominator: 'half', offset: 0 }, scaleEmbedding: true,
        specialTokens: { decoderStart: 58100, eos: [0], pad: 58100 },
      };
      return {
        model: EncoderDecoderTransformer.fromParameters(c, randomEncoderDecoderParameters(c, 1234, { sharedEmbeddings: true, outputBias: true }), weights ? { weights } : {}),
      };
    },
  },
};

export function modelSpec(name: string): ModelSpec {
  const spec = MODELS[name];
  if (!spec) throw new InvalidOptionError('--models', name, `one of ${Object.keys(MODELS).join(', ')}`);
  return spec;
}

/** A model by name, or any model path/URL through the loaders. */
export async function buildModelFor(name: string, fixture: (path: string) => ModelSource, weights?: WeightFormat): Promise<BuiltModel> {
  if (MODELS[name]) return MODELS[name]!.build(fixture, weights);
  const { loadModel } = await import('@kvt/loaders');
  const loaded = await loadModel(name, weights ? { weights } : {});
  return { model: loaded.model, tokenizer: loaded.tokenizer };
}
