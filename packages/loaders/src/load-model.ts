import {
  InvalidInputError,
  InvalidOptionError,
  ModelFormatError,
  UnsupportedError,
  resolveGenerationConfig,
  type DecoderOnlyModel,
  type EncoderDecoderModel,
  type GenerationOptions,
  type Tokenizer,
} from '@kvt/core';
import { EncoderDecoderTransformer, Gpt2Model, LlamaModel, type HostTensor, type QuantizedHostTensor } from '@kvt/models';
import { WEIGHT_FORMATS, type WeightFormat } from '@kvt/kernels';
import { decodeUtf8 } from './bytes/binary-reader.js';
import { cacheNameOf, cachedModelFiles } from './bytes/browser-cache.js';
import { openModelFiles, type ModelFiles, type ModelSource, type ProgressCallback, type RandomAccessFile } from './bytes/sources.js';
import { parseCTranslate2 } from './formats/ctranslate2.js';
import { llamaFromGguf, parseGguf, tokenizerFromGguf } from './formats/gguf.js';
import { fromHuggingFace, generationDefaults, hfKeyOf } from './formats/hugging-face.js';
import { parseLlama2cCheckpoint } from './formats/llama2c.js';
import { parseSafetensors, readQuantizedSafetensor, readSafetensor, type SafetensorsFile } from './formats/safetensors.js';
import { hfTokenizer } from './tokenizers/hf-tokenizer.js';
import { marianTokenizer } from './tokenizers/marian-tokenizer.js';
import { parseLlama2cTokenizer } from './tokenizers/llama2c-tokenizer.js';
import { parseSentencePieceModel } from './tokenizers/sentencepiece-model.js';
import { vocabularyTokenizer } from './tokenizers/vocabulary-tokenizer.js';

export type ModelFormat = 'llama2c' | 'gguf' | 'huggingface' | 'ctranslate2';

/** A loaded model with its tokenizer(s). Dispose it to free the weights. */
export type LoadedModel = {
  readonly format: ModelFormat;
  /**
   * The generation settings the model's files declare (generation_config.json, or an older config.json's generation
   * keys); `generate`/`translate` apply them (`model.generationDefaults`) unless a request overrides them.
   */
  readonly generationDefaults: GenerationOptions;
  /** Files read, for messages. */
  readonly files: readonly string[];
  dispose(): void;
} & (
  | { readonly kind: 'decoder-only'; readonly model: DecoderOnlyModel; readonly tokenizer?: Tokenizer }
  | {
      readonly kind: 'encoder-decoder';
      readonly model: EncoderDecoderModel;
      /** Encodes source text. */
      readonly tokenizer?: Tokenizer;
      /** Decodes target ids (the source tokenizer when the vocabulary is shared). */
      readonly targetTokenizer?: Tokenizer;
    }
);

export interface LoadModelOptions {
  /** A tokenizer file (or folder) to use instead of the one found beside the model. */
  readonly tokenizer?: ModelSource;
  /** Called while files are read: file name, bytes, which file of the load it is, and where it comes from. */
  readonly onProgress?: ProgressCallback;
  /**
   * The format of the linear weights on the backend: `'fp32'`, `'fp16'`, or quantized at load to `'q8_0'` (8-bit,
   * blocks of 32 with an fp16 scale), `'q4_0'` (4-bit) or `'q4_k'` (4-bit super-blocks of 256 with 6-bit scales and
   * mins; rows not a multiple of 256 get q4_0). Default: as stored (a GGUF file's Q8_0/Q4_0/Q4_K tensors stay
   * quantized). Rows whose length is not a multiple of 32 stay float32; backends that multiply float32 only get
   * dequantized weights.
   */
  readonly weights?: WeightFormat;
  /**
   * Browsers: keep the files of a URL model in the Cache API (`true`: the `kvt-models` bucket, or a bucket name), so
   * the next load of that URL makes no request. See `listCachedModelFiles`, `clearModelCache`.
   */
  readonly cache?: boolean | string;
}

/**
 * Loads a model from a file or folder, finding its format and tokenizer: llama2.c `.bin` (+ `tok*.bin`,
 * `tokenizer.model`), GGUF (tokenizer in its metadata), Hugging Face folders (`config.json`, `model.safetensors` or
 * sharded, `tokenizer.json` or Marian's `source.spm` + `vocab.json`, `generation_config.json`), CTranslate2 (`model.bin` + `*_vocabulary.txt`).
 * The weights go to the active tfjs backend: import a backend package first.
 *
 * @example
 * ```ts
 * import '@kvt/backend-wasm';
 * const loaded = await loadModel('../shared/fixtures/stories260K/stories260K.bin');
 * if (loaded.kind === 'decoder-only') await generate(loaded.model, { prompt: 'Once upon a time', tokenizer: loaded.tokenizer });
 * loaded.dispose();
 * ```
 */
export async function loadModel(source: ModelSource, options: LoadModelOptions = {}): Promise<LoadedModel> {
  const cacheName = cacheNameOf(options.cache);
  if (options.weights !== undefined && !WEIGHT_FORMATS.includes(options.weights))
    throw new InvalidOptionError('weights', options.weights, `one of ${WEIGHT_FORMATS.map((f) => `'${f}'`).join(', ')}`);
  const build = options.weights === undefined ? {} : { weights: options.weights };
  const opened = await openModelFiles(source);
  const isUrl = (typeof source === 'string' && /^https?:/i.test(source)) || source instanceof URL;
  const files = cacheName && isUrl ? cachedModelFiles(opened, String(source), cacheName) : opened;
  options = { ...options, ...(options.onProgress ? { onProgress: numbered(options.onProgress) } : {}) };
  const format = await detectFormat(files);
  const read = (f: string) => files.read(f, options.onProgress);
  const tokenizerFiles = options.tokenizer !== undefined ? await openModelFiles(options.tokenizer) : undefined;
  switch (format.format) {
    case 'llama2c': {
      // on disk: read each tensor as the model takes it (peak memory ≈ the weights uploaded + one tensor)
      const file = files.openRandomAccess ? withProgress(await files.openRandomAccess(format.file), format.file, options.onProgress) : await read(format.file);
      try {
        const { config, params } = parseLlama2cCheckpoint(file, format.file);
        const tokenizer = await findTokenizer(tokenizerFiles ?? files, config.vocabSize, tokenizerFiles !== undefined, options.onProgress);
        checkVocab(tokenizer, config.vocabSize, format.file);
        const model = LlamaModel.fromParameters(config, params, build);
        return decoderOnly('llama2c', model, tokenizer, {}, [format.file]);
      } finally {
        if (!(file instanceof Uint8Array)) file.close();
      }
    }
    case 'gguf': {
      // the magic first: a large file that is not GGUF is rejected without reading it
      if (!isGgufMagic(await firstBytes(files, format.file, 4))) throw new ModelFormatError(format.file, 'not a GGUF file (bad magic)');
      const bytes = await read(format.file);
      const g = parseGguf(bytes, format.file);
      const { config, params } = llamaFromGguf(g);
      const tokenizer = tokenizerFiles
        ? await findTokenizer(tokenizerFiles, config.vocabSize, true, options.onProgress)
        : g.metadata.has('tokenizer.ggml.tokens')
          ? tokenizerFromGguf(g)
          : undefined;
      checkVocab(tokenizer, config.vocabSize, format.file);
      return decoderOnly('gguf', LlamaModel.fromParameters(config, params, build), tokenizer, {}, [format.file]);
    }
    case 'ctranslate2': {
      const bytes = await read(format.file);
      const { config, params } = parseCTranslate2(bytes, format.file);
      const vocab = async (name: string) =>
        (await files.exists(name)) ? vocabularyTokenizer(decodeUtf8(await read(name), name, 'vocabulary'), name) : undefined;
      const shared = await vocab('shared_vocabulary.txt');
      const src = shared ?? (await vocab('source_vocabulary.txt'));
      const tgt = shared ?? (await vocab('target_vocabulary.txt'));
      if (src && src.vocabSize !== config.sourceVocabSize)
        throw new ModelFormatError('source_vocabulary.txt', `${src.vocabSize} tokens, but the model's source embedding has ${config.sourceVocabSize} rows`);
      checkVocab(tgt, config.targetVocabSize, 'target_vocabulary.txt');
      const model = EncoderDecoderTransformer.fromParameters(config, params, build);
      return encoderDecoder('ctranslate2', model, src, tgt, {}, [format.file]);
    }
    case 'huggingface':
      return loadHuggingFace(files, tokenizerFiles, build, options.onProgress);
  }
}

/** Adds each file's place in the load (1, 2, …) and its origin to progress reports. */
function numbered(onProgress: ProgressCallback): ProgressCallback {
  const order = new Map<string, number>();
  return (p) => {
    if (!order.has(p.file)) order.set(p.file, order.size + 1);
    onProgress({ from: 'local', ...p, fileIndex: order.get(p.file)! });
  };
}

function checkVocab(tokenizer: Tokenizer | undefined, vocabSize: number, file: string): void {
  if (tokenizer && tokenizer.vocabSize !== vocabSize)
    throw new ModelFormatError(file, `the model has a vocabulary of ${vocabSize} but the tokenizer has ${tokenizer.vocabSize}; use the tokenizer trained with this model`);
}

function decoderOnly(format: ModelFormat, model: DecoderOnlyModel, tokenizer: Tokenizer | undefined, defaults: GenerationOptions, files: string[]): LoadedModel {
  return { kind: 'decoder-only', format, model, ...(tokenizer ? { tokenizer } : {}), generationDefaults: defaults, files, dispose: () => model.dispose() };
}

function encoderDecoder(
  format: ModelFormat,
  model: EncoderDecoderModel,
  tokenizer: Tokenizer | undefined,
  targetTokenizer: Tokenizer | undefined,
  defaults: GenerationOptions,
  files: string[],
): LoadedModel {
  return {
    kind: 'encoder-decoder',
    format,
    model,
    ...(tokenizer ? { tokenizer } : {}),
    ...(targetTokenizer ? { targetTokenizer } : {}),
    generationDefaults: defaults,
    files,
    dispose: () => model.dispose(),
  };
}

function isGgufMagic(head: Uint8Array): boolean {
  return head.length === 4 && head[0] === 0x47 && head[1] === 0x47 && head[2] === 0x55 && head[3] === 0x46; // "GGUF"
}

/** The first `n` bytes of a file (without reading the rest where the source reads in pieces). */
async function firstBytes(files: ModelFiles, name: string, n: number): Promise<Uint8Array> {
  if (!files.openRandomAccess) return (await files.read(name)).subarray(0, n);
  const file = await files.openRandomAccess(name);
  try {
    return file.read(0, Math.min(n, file.byteLength));
  } finally {
    file.close();
  }
}

/** Reports the bytes read so far of a file read in pieces. */
function withProgress(file: RandomAccessFile, name: string, onProgress: ProgressCallback | undefined): RandomAccessFile {
  if (!onProgress) return file;
  let loaded = 0;
  return {
    ...file,
    read: (offset, length) => {
      const bytes = file.read(offset, length);
      loaded += length;
      onProgress({ file: name, loaded: Math.min(loaded, file.byteLength), total: file.byteLength });
      return bytes;
    },
  };
}

/** Finds the model file and its format from the names (and, for `.bin`, the first bytes). */
export async function detectFormat(files: ModelFiles): Promise<{ format: ModelFormat; file: string }> {
  const names = (await files.list()) ?? [];
  const p = files.primary;
  if (p) {
    if (/\.gguf$/i.test(p)) return { format: 'gguf', file: p };
    if (/\.safetensors$/i.test(p) || p === 'config.json' || p === 'model.safetensors.index.json') return { format: 'huggingface', file: 'config.json' };
    if (/\.bin$/i.test(p)) {
      const head = await firstBytes(files, p, 6);
      // CTranslate2 v2 starts with u32 2 and a short spec-name length; llama2.c with dim (a larger int32)
      const isCt2 = head.length >= 6 && head[0] === 2 && head[1] === 0 && head[2] === 0 && head[3] === 0;
      return { format: isCt2 ? 'ctranslate2' : 'llama2c', file: p };
    }
    throw new UnsupportedError(`${p}: kvt loads .bin (llama2.c, CTranslate2), .gguf and Hugging Face folders.`);
  }
  const has = async (f: string) => names.includes(f) || (names.length === 0 && (await files.exists(f)));
  if (await has('config.json')) return { format: 'huggingface', file: 'config.json' };
  const gguf = names.find((n) => /\.gguf$/i.test(n));
  if (gguf) return { format: 'gguf', file: gguf };
  if ((await has('model.bin')) && names.some((n) => /_vocabulary\.txt$/.test(n))) return { format: 'ctranslate2', file: 'model.bin' };
  const bin = names.find((n) => /\.bin$/i.test(n) && !/^tok/i.test(n) && n !== 'tokenizer.bin');
  if (bin) return { format: 'llama2c', file: bin };
  throw new InvalidInputError(`${files.name}: no model found (looked for config.json, *.gguf, model.bin with vocabularies, *.bin).`);
}

/** The tokenizer beside a decoder-only model: tokenizer.json, tok*.bin, tokenizer.bin or tokenizer.model. */
async function findTokenizer(files: ModelFiles, vocabSize: number, required: boolean, onProgress?: ProgressCallback): Promise<Tokenizer | undefined> {
  // a folder that cannot be listed (a URL): probe the usual names
  const names = (await files.list()) ?? (await probe(files, ['tokenizer.json', `tok${vocabSize}.bin`, 'tokenizer.bin', 'tokenizer.model']));
  const read = (f: string) => files.read(f, onProgress);
  if (files.primary && files.primary !== 'config.json' && required) return tokenizerFromFile(files, files.primary, vocabSize, onProgress);
  if (names.includes('tokenizer.json')) return tokenizerFromFile(files, 'tokenizer.json', vocabSize, onProgress);
  const bins = names.filter((n) => /^tok.*\.bin$/i.test(n) || n === 'tokenizer.bin');
  const bin = bins.find((n) => n === `tok${vocabSize}.bin`) ?? bins[0];
  if (bin) return parseLlama2cTokenizer(await read(bin), bin, vocabSize);
  const spm = names.find((n) => n === 'tokenizer.model' || /^tok.*\.model$/.test(n));
  if (spm) return parseSentencePieceModel(await read(spm), spm);
  if (required) throw new InvalidInputError(`${files.name}: no tokenizer found (tokenizer.json, tok*.bin, tokenizer.model).`);
  return undefined;
}

async function probe(files: ModelFiles, candidates: string[]): Promise<string[]> {
  const found: string[] = [];
  for (const c of candidates) if (await files.exists(c)) found.push(c);
  return found;
}

async function tokenizerFromFile(files: ModelFiles, name: string, vocabSize: number, onProgress?: ProgressCallback): Promise<Tokenizer> {
  const bytes = await files.read(name, onProgress);
  if (name.endsWith('.json')) {
    const config = (await files.exists('tokenizer_config.json')) ? parseJson(await files.read('tokenizer_config.json'), 'tokenizer_config.json') : {};
    return hfTokenizer(parseJson(bytes, name), config, name);
  }
  if (name.endsWith('.bin')) return parseLlama2cTokenizer(bytes, name, vocabSize);
  if (name.endsWith('.model') || name.endsWith('.spm')) return parseSentencePieceModel(bytes, name);
  throw new UnsupportedError(`${name}: kvt reads tokenizer.json, tok*.bin and SentencePiece .model files.`);
}

function parseJson(bytes: Uint8Array, file: string): Record<string, unknown> {
  try {
    const v = JSON.parse(decodeUtf8(bytes, file, 'JSON'));
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch (e) {
    if (ModelFormatError.isInstance(e)) throw e;
    throw new ModelFormatError(file, 'is not a JSON object');
  }
}

/** A Hugging Face folder's tokenizer: tokenizer.json, else Marian's source.spm + vocab.json (opus-mt folders). */
async function findHuggingFaceTokenizer(
  files: ModelFiles,
  primary: string | undefined,
  vocabSize: number,
  onProgress?: ProgressCallback,
): Promise<Tokenizer | undefined> {
  // a tokenizer file given with --tokenizer: any format, for any model of its vocabulary size
  if (primary) return tokenizerFromFile(files, primary, vocabSize, onProgress);
  if (await files.exists('tokenizer.json')) return tokenizerFromFile(files, 'tokenizer.json', 0, onProgress);
  if ((await files.exists('source.spm')) && (await files.exists('vocab.json'))) {
    const config = (await files.exists('tokenizer_config.json')) ? parseJson(await files.read('tokenizer_config.json'), 'tokenizer_config.json') : {};
    return marianTokenizer({ sourceSpm: await files.read('source.spm', onProgress), vocab: await files.read('vocab.json', onProgress), config });
  }
  return undefined;
}

async function loadHuggingFace(
  files: ModelFiles,
  tokenizerFiles: ModelFiles | undefined,
  build: { weights?: WeightFormat },
  onProgress?: ProgressCallback,
): Promise<LoadedModel> {
  const config = parseJson(await files.read('config.json', onProgress), 'config.json');
  const shards: Map<string, SafetensorsFile> = new Map();
  const index = (await files.exists('model.safetensors.index.json'))
    ? parseJson(await files.read('model.safetensors.index.json', onProgress), 'model.safetensors.index.json')
    : undefined;
  let lookup: (name: string) => HostTensor | undefined;
  let quantized: (name: string) => QuantizedHostTensor | undefined;
  if (index) {
    const map = index.weight_map;
    if (typeof map !== 'object' || map === null) throw new ModelFormatError('model.safetensors.index.json', 'weight_map is missing');
    const weightMap = map as Record<string, string>;
    for (const shard of new Set(Object.values(weightMap))) {
      if (typeof shard !== 'string' || shard.includes('/') || shard.includes('..'))
        throw new ModelFormatError('model.safetensors.index.json', `shard name ${JSON.stringify(shard)} is not a file name`);
      shards.set(shard, parseSafetensors(await files.read(shard, onProgress), shard));
    }
    lookup = (name) => {
      const shard = weightMap[name];
      const st = shard ? shards.get(shard) : undefined;
      return st && st.entries.has(name) ? readSafetensor(st, name) : undefined;
    };
    quantized = (name) => {
      const shard = weightMap[name];
      const st = shard ? shards.get(shard) : undefined;
      return st ? readQuantizedSafetensor(st, name) : undefined;
    };
  } else {
    if (!(await files.exists('model.safetensors')))
      throw new InvalidInputError(`${files.name}: no model.safetensors (or model.safetensors.index.json); kvt reads safetensors weights.`);
    const st = parseSafetensors(await files.read('model.safetensors', onProgress), 'model.safetensors');
    shards.set('model.safetensors', st);
    lookup = (name) => (st.entries.has(name) ? readSafetensor(st, name) : undefined);
    quantized = (name) => readQuantizedSafetensor(st, name);
  }
  // generation settings: generation_config.json, else the generation keys of an older config.json
  const generationFile = (await files.exists('generation_config.json')) ? 'generation_config.json' : 'config.json';
  const generation = generationFile === 'config.json' ? config : parseJson(await files.read(generationFile, onProgress), generationFile);
  const arch = fromHuggingFace(config, lookup, 'config.json', generationFile === 'config.json' ? undefined : generation, quantized);
  const defaults = generationDefaults(generation);
  const vocabSize = arch.kind === 'encoder-decoder' ? arch.config.targetVocabSize : arch.config.vocabSize;
  const tokenizer = await findHuggingFaceTokenizer(tokenizerFiles ?? files, tokenizerFiles?.primary, vocabSize, onProgress);
  const fileList = ['config.json', ...shards.keys()];
  if (arch.kind === 'encoder-decoder') {
    if (tokenizer && tokenizer.vocabSize > arch.config.sourceVocabSize)
      throw new ModelFormatError('tokenizer.json', `the tokenizer has ${tokenizer.vocabSize} tokens but the model's vocabulary has ${arch.config.sourceVocabSize}`);
    const model = withDefaults(configErrors(() => EncoderDecoderTransformer.fromParameters(arch.config, arch.params, build)), defaults, generationFile);
    return encoderDecoder('huggingface', model, tokenizer, tokenizer, defaults, fileList);
  }
  if (tokenizer && tokenizer.vocabSize > arch.config.vocabSize)
    throw new ModelFormatError('tokenizer.json', `the tokenizer has ${tokenizer.vocabSize} tokens but the model's vocabulary has ${arch.config.vocabSize}`);
  const model = withDefaults(
    configErrors(() => (arch.kind === 'llama' ? LlamaModel.fromParameters(arch.config, arch.params, build) : Gpt2Model.fromParameters(arch.config, arch.params, build))),
    defaults,
    generationFile,
  );
  return decoderOnly('huggingface', model, tokenizer, defaults, fileList);
}

/** A config value the architecture rejects (a negative epsilon, an id outside the vocabulary) is config.json's fault. */
function configErrors<M>(build: () => M): M {
  try {
    return build();
  } catch (e) {
    if (InvalidOptionError.isInstance(e)) throw new ModelFormatError('config.json', `${e.option} is ${JSON.stringify(e.value)}; expected ${e.expected}`);
    throw e;
  }
}

/**
 * Checks the declared generation settings against the model (ids in the vocabulary, sizes within bounds) and gives
 * them to it, so `generate`/`translate` apply them. A bad value is the file's error, at load, before any generation.
 */
function withDefaults<M extends DecoderOnlyModel | EncoderDecoderModel>(model: M, defaults: GenerationOptions, file: string): M {
  try {
    resolveGenerationConfig({}, model.config, { defaults, promptLength: 1 });
  } catch (e) {
    model.dispose();
    if (InvalidOptionError.isInstance(e)) throw new ModelFormatError(file, `${hfKeyOf(e.option)} is ${JSON.stringify(e.value)}; expected ${e.expected}`);
    throw e;
  }
  model.generationDefaults = Object.freeze({ ...defaults });
  return model;
}
