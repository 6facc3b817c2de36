/**
 * kvt's default English→Spanish model: a 7.6M-parameter Marian-layout encoder-decoder trained by
 * `tools/train-translator` on English–Spanish pairs from www.manythings.org/anki and tatoeba.org (CC-BY 2.0).
 *
 * @example
 * ```ts
 * import { modelFiles } from '@kvt/model-en-es';
 * const loaded = await loadModel(modelFiles.path);      // Node
 * const loaded2 = await loadModel(modelFiles.url.href);  // browser (bundlers resolve the URL)
 * const small = await loadModel(quantizedModelFiles.path); // q8_0 weights: 8 MB instead of 15
 * ```
 */
/** The files kvt reads from the folder; `source.spm`, `target.spm` and `vocab.json` (Marian's own tokenizer files) are there too. */
export const MODEL_FILES = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json'] as const;

const folder = new URL('../model/', import.meta.url);

export const modelFiles = {
  /** The folder as a URL (works with bundlers that copy assets). */
  url: folder,
  /** The folder as a local path (Node only). */
  get path(): string {
    return decodeURIComponent(folder.pathname);
  },
  /** The data's attribution, to show beside the model. */
  attribution: 'Trained on English–Spanish pairs from www.manythings.org/anki and tatoeba.org (CC-BY 2.0).',
};

const quantizedFolder = new URL('../model-q8_0/', import.meta.url);

/**
 * The same model with q8_0 weights (int8 per 32 values with an fp16 scale, kvt's quantized safetensors): 8.2 MB
 * instead of 15.2, the same BLEU on the dev set (44.86 against 44.74, beam 4). Written by `kvt quantize model
 * model-q8_0 --weights q8_0`; WASM and CPU multiply the weights as stored, WebGL and WebGPU dequantize them at load.
 */
export const quantizedModelFiles = {
  url: quantizedFolder,
  get path(): string {
    return decodeURIComponent(quantizedFolder.pathname);
  },
  weights: 'q8_0' as const,
  attribution: modelFiles.attribution,
};
