import type { Cache, EncoderDecoderCache, KVDtype } from './cache.js';
import type { GenerationOptions } from '../generation/config.js';

/** Token ids a model knows specially. */
export interface SpecialTokens {
  /** Beginning of sequence, prepended to prompts when the tokenizer says so. */
  readonly bos?: number;
  /** Any of these ends a sequence. */
  readonly eos: readonly number[];
  /** Padding (left padding of batched prompts, filler after a sequence ended). */
  readonly pad?: number;
  /** Encoder-decoder: the first decoder input. */
  readonly decoderStart?: number;
}

/** The shape facts every model reports. */
export interface ModelConfig {
  readonly architecture: string;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly vocabSize: number;
  readonly maxPositions: number;
  readonly specialTokens: SpecialTokens;
}

/**
 * Logits read back from a model: row-major `[batch, positions, vocabSize]`.
 * `positions` is 1 when only the last position was asked for.
 */
export interface Logits {
  readonly data: Float32Array;
  readonly batch: number;
  readonly positions: number;
  readonly vocabSize: number;
}

export interface ForwardOptions {
  /** 'last' (default): logits of the last position only; 'all': every new position. */
  readonly logits?: 'last' | 'all';
}

export interface CreateCacheOptions {
  readonly batchSize: number;
  /** Positions to reserve up front (a hint; caches grow as needed up to the model's positions). */
  readonly capacityHint?: number;
  /**
   * 'auto' (default): the active backend's cache where a backend package is registered, else the reference;
   * 'backend': the backend's cache (a typed error where none is registered); 'concat': the reference cache.
   */
  readonly kind?: 'auto' | 'backend' | 'concat';
  /** How K/V are stored (default 'fp32'); a typed error where the cache cannot store them so. */
  readonly kvDtype?: KVDtype;
}

/**
 * A decoder-only language model (Llama, GPT-2).
 *
 * @example
 * ```ts
 * const cache = model.createCache({ batchSize: 1 });
 * const first = await model.forward([[1, 403, 407]], cache); // prefill: [1, 1, vocab]
 * const next = await model.forward([[argmax(first.data)]], cache); // one step
 * cache.dispose();
 * ```
 */
export interface DecoderOnlyModel {
  readonly kind: 'decoder-only';
  readonly config: ModelConfig;
  /**
   * The generation settings the checkpoint declares (Hugging Face `generation_config.json`, or the generation keys
   * of an older `config.json`): `generate` applies them unless the request says otherwise.
   */
  generationDefaults?: Readonly<GenerationOptions>;
  createCache(options: CreateCacheOptions): Cache;
  /**
   * Runs `tokenIds` (one row per sequence) after what `cache` holds and appends their K/V to it. On an empty cache
   * rows may differ in length (they are left-padded); afterwards every row gives the same number of new tokens.
   * Without a cache (`null`) the whole sequence is computed from scratch and nothing is kept.
   */
  forward(tokenIds: readonly (readonly number[])[], cache: Cache | null, options?: ForwardOptions): Promise<Logits>;
  /**
   * Removes positions `[start, start + count)` of every row of `cache`; the later ones move down by `count` and keep
   * attending as before, at their new positions (rotary models: StreamingLLM's sliding window with attention sinks).
   * Absent where the model's positions cannot move (learned absolute positions).
   */
  evictPositions?(cache: Cache, start: number, count: number): Promise<void>;
  dispose(): void;
}

/** What `encode` returns: opaque to the loops, owned by the caller (dispose it). */
export interface EncoderState {
  /** Number of source sentences. */
  readonly batchSize: number;
  /** Tokens of each source (without padding). */
  readonly sourceLengths: readonly number[];
  dispose(): void;
  readonly disposed: boolean;
}

/**
 * An encoder-decoder (translation) model: Marian, BART, OpenNMT/CTranslate2 Transformers.
 *
 * @example
 * ```ts
 * const state = await model.encode([[12, 7, 9, 0]]);
 * const cache = model.createCache({ encoderState: state, rowsPerSource: 1 });
 * const logits = await model.decode([[model.config.specialTokens.decoderStart!]], state, cache);
 * cache.dispose(); state.dispose();
 * ```
 */
export interface EncoderDecoderModel {
  readonly kind: 'encoder-decoder';
  readonly config: ModelConfig & { readonly sourceVocabSize: number };
  /** The generation settings the checkpoint declares: `translate` applies them unless the request says otherwise. */
  generationDefaults?: Readonly<GenerationOptions>;
  encode(sourceIds: readonly (readonly number[])[]): Promise<EncoderState>;
  /** A cache whose rows are grouped `rowsPerSource` per source sentence of `encoderState`. */
  createCache(options: {
    readonly encoderState: EncoderState;
    readonly rowsPerSource?: number;
    readonly capacityHint?: number;
    readonly kind?: 'auto' | 'backend' | 'concat';
  }): EncoderDecoderCache;
  /**
   * Runs decoder inputs `targetIds` (one row per cache row, all the same length) against the encoder state.
   * Without a cache (`null`) rows map one-to-one to sources and the whole target is recomputed.
   */
  decode(
    targetIds: readonly (readonly number[])[],
    encoderState: EncoderState,
    cache: EncoderDecoderCache | null,
    options?: ForwardOptions,
  ): Promise<Logits>;
  dispose(): void;
}

export type Model = DecoderOnlyModel | EncoderDecoderModel;
