import type { DecoderOnlyModel, EncoderDecoderModel } from '@kvt/core';
import { EncoderDecoderTransformer, type EncoderDecoderConfig } from '../architectures/encoder-decoder.js';
import { Gpt2Model, type Gpt2Config } from '../architectures/gpt2.js';
import { LlamaModel, type LlamaConfig } from '../architectures/llama.js';
import { randomEncoderDecoderParameters, randomGpt2Parameters, randomLlamaParameters } from '../weights/random.js';

/** Small seeded models of every architecture variant, for conformance tests. */
export interface TinyDecoderOnly {
  readonly name: string;
  build(vocabSize?: number): DecoderOnlyModel;
}
export interface TinyEncoderDecoder {
  readonly name: string;
  build(vocabSize?: number): EncoderDecoderModel & { counters: { crossAttentionProjections: number } };
}

const llama = (over: Partial<LlamaConfig>, tied: boolean, seed: number) => (vocabSize = 61) => {
  const config: LlamaConfig = {
    architecture: 'llama',
    vocabSize,
    hiddenSize: 32,
    intermediateSize: 48,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    maxPositions: 160,
    specialTokens: { bos: 1, eos: [2], pad: 0 },
    ...over,
  };
  return LlamaModel.fromParameters(config, randomLlamaParameters(config, seed, { tied }));
};

export const tinyDecoderOnlyModels: TinyDecoderOnly[] = [
  { name: 'llama (GQA 4/2 heads, tied, interleaved rotary)', build: llama({}, true, 11) },
  { name: 'llama (MHA, separate output, half rotary)', build: llama({ numKvHeads: 4, ropeStyle: 'half' }, false, 12) },
  {
    name: 'gpt2',
    build: (vocabSize = 61) => {
      const config: Gpt2Config = {
        architecture: 'gpt2',
        vocabSize,
        hiddenSize: 32,
        numLayers: 2,
        numHeads: 4,
        maxPositions: 160,
        specialTokens: { eos: [2], pad: 0 },
      };
      return Gpt2Model.fromParameters(config, randomGpt2Parameters(config, 13));
    },
  },
];

const encdec = (over: Partial<EncoderDecoderConfig>, opts: Parameters<typeof randomEncoderDecoderParameters>[2], seed: number) =>
  (vocabSize = 53) => {
    const config: EncoderDecoderConfig = {
      architecture: 'encoder-decoder',
      dModel: 32,
      numHeads: 4,
      encoderLayers: 2,
      decoderLayers: 2,
      ffnDim: 64,
      sourceVocabSize: vocabSize + 3,
      targetVocabSize: vocabSize,
      maxPositions: 160,
      normPlacement: 'pre',
      activation: 'relu',
      positions: { kind: 'sinusoidal', layout: 'concat', denominator: 'half-minus-one', offset: 1 },
      scaleEmbedding: true,
      encoderFinalNorm: true,
      decoderFinalNorm: true,
      specialTokens: { decoderStart: 1, eos: [2], pad: 0 },
      ...over,
    };
    return EncoderDecoderTransformer.fromParameters(config, randomEncoderDecoderParameters(config, seed, opts));
  };

export const tinyEncoderDecoderModels: TinyEncoderDecoder[] = [
  {
    name: 'OpenNMT/CTranslate2-style (pre-norm, ReLU, sinusoidal from 1, separate vocabularies, output bias)',
    build: encdec({}, { tiedOutput: false, outputBias: true }, 21),
  },
  {
    name: 'Marian-style (post-norm, SiLU, sinusoidal, shared embeddings, tied output, logits bias)',
    build: (v = 53) =>
      encdec(
        {
          sourceVocabSize: v,
          normPlacement: 'post',
          activation: 'silu',
          positions: { kind: 'sinusoidal', layout: 'concat', denominator: 'half', offset: 0 },
          encoderFinalNorm: false,
          decoderFinalNorm: false,
        },
        { sharedEmbeddings: true, outputBias: true },
        22,
      )(v),
  },
  {
    name: 'BART-style (post-norm, GELU, learned positions offset 2, embedding norm)',
    build: (v = 53) =>
      encdec(
        {
          sourceVocabSize: v,
          normPlacement: 'post',
          activation: 'gelu',
          positions: { kind: 'learned', offset: 2 },
          scaleEmbedding: false,
          embeddingNorm: true,
          encoderFinalNorm: false,
          decoderFinalNorm: false,
        },
        { sharedEmbeddings: true },
        23,
      )(v),
  },
  {
    name: 'Vaswani-style (post-norm, ReLU, interleaved sinusoidal)',
    build: encdec(
      {
        normPlacement: 'post',
        positions: { kind: 'sinusoidal', layout: 'interleaved', denominator: 'half', offset: 0 },
        encoderFinalNorm: false,
        decoderFinalNorm: false,
      },
      {},
      24,
    ),
  },
];
