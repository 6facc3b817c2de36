/**
 * @kvt/loaders: checkpoints and tokenizers from llama2.c, GGUF, Hugging Face folders and CTranslate2, validated
 * before anything is allocated, with typed errors that name the file.
 *
 * @packageDocumentation
 */
export type { WeightFormat } from '@kvt/kernels';
export { loadModel, detectFormat, type LoadedModel, type LoadModelOptions, type ModelFormat } from './load-model.js';
export { openModelFiles, type ModelFiles, type ModelSource, type LoadProgress, type ProgressCallback } from './bytes/sources.js';
export { MODEL_CACHE, cachedModelFiles, clearModelCache, listCachedModelFiles, type CachedFile } from './bytes/browser-cache.js';
export { parseLlama2cCheckpoint, type ParsedCheckpoint } from './formats/llama2c.js';
export { llamaToGguf, writeGguf, type GgufEntry, type GgufTensorOut } from './formats/gguf-writer.js';
export { parseGguf, readGgufTensor, llamaFromGguf, tokenizerFromGguf, type GgufFile, type GgufTensorInfo, type GgufValue } from './formats/gguf.js';
export { parseSafetensors, readQuantizedSafetensor, readSafetensor, writeSafetensors, type SafetensorsFile, type SafetensorsEntry } from './formats/safetensors.js';
export { fromHuggingFace, generationDefaults, HF_GENERATION_KEYS, SUPPORTED_MODEL_TYPES, type HfArchitecture, type QuantizedLookup, type TensorLookup } from './formats/hugging-face.js';
export { parseCTranslate2 } from './formats/ctranslate2.js';
export { ScoreBpeTokenizer, type ScoreBpeOptions } from './tokenizers/score-bpe.js';
export { parseLlama2cTokenizer } from './tokenizers/llama2c-tokenizer.js';
export { parseSentencePieceModel, readSentencePieceModel, sentencePieceTokenizer, type SentencePiece, type SentencePieceModel } from './tokenizers/sentencepiece-model.js';
export { marianTokenizer, type MarianTokenizerFiles } from './tokenizers/marian-tokenizer.js';
export { hfTokenizer } from './tokenizers/hf-tokenizer.js';
export { vocabularyTokenizer } from './tokenizers/vocabulary-tokenizer.js';
