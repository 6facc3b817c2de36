/**
 * kvt's default English→Spanish model: a 7.6M-parameter Marian-layout encoder-decoder trained by
 * `tools/train-translator` on English–Spanish pairs from www.manythings.org/anki and tatoeba.org (CC-BY 2.0).
 *
 * @example
 * ```ts
 * import { modelFiles } from '@kvt/model-en-es';
 * const loaded = await loadModel(modelFiles.path);      // Node
 * const loaded2 = await loadModel(modelFiles.url.href);  // browser (bundlers resolve the URL)
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
