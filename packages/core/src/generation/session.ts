import type { Cache, EncoderDecoderCache, KVDtype } from '../contracts/cache.js';
import type { DecoderOnlyModel, EncoderDecoderModel, EncoderState, Logits } from '../contracts/model.js';

/**
 * What the decoding loops drive: a model and its cache, all rows stepping together. One implementation per model
 * kind and cache mode, so greedy, sampling and beam search are written once.
 */
export interface DecodingSession<C extends Cache = Cache> {
  readonly vocabSize: number;
  /** Feeds new tokens (one row per sequence) and returns the last position's logits `[rows, 1, vocab]`. */
  step(tokens: readonly (readonly number[])[]): Promise<Logits>;
  /** Row `i` becomes row `indices[i]` (beam search). */
  reorder(indices: readonly number[]): void;
  /** The cache, or null when every step recomputes the whole sequence. */
  readonly cache: C | null;
  dispose(): void;
}

/**
 * How a loop keeps past keys and values: 'auto' (the default: the active backend's cache where a backend package is
 * imported, else the reference), 'backend' (the backend's cache; a typed error where none is registered), 'concat'
 * (the reference cache) or 'none' (recompute the whole prefix every step: for comparison and benchmarks only).
 */
export type CacheMode = 'auto' | 'backend' | 'concat' | 'none';

/**
 * StreamingLLM's attention sinks and sliding window: the cache keeps the first `sinkTokens` positions and at most
 * `window` after them; when a step would pass that, the oldest positions after the sinks are evicted, `chunk` at a
 * time (the model moves the rest down: positions within the cache).
 */
export interface SlidingWindow {
  readonly window: number;
  readonly sinkTokens: number;
  /** Positions evicted at once (default: window / 16, at least 1): one eviction per `chunk` steps. */
  readonly chunk?: number;
}

/** A session over a decoder-only model. */
export function decoderOnlySession(
  model: DecoderOnlyModel,
  rows: number,
  mode: CacheMode,
  capacityHint: number,
  kvDtype: KVDtype = 'fp32',
  sliding?: SlidingWindow,
): DecodingSession {
  if (mode === 'none') return new RecomputeSession(rows, (h) => model.forward(h, null), model.config.vocabSize);
  const limit = sliding ? sliding.sinkTokens + sliding.window : Infinity;
  const cache = model.createCache({ batchSize: rows, capacityHint: Math.min(capacityHint, limit), kind: mode, ...(kvDtype !== 'fp32' ? { kvDtype } : {}) });
  const chunk = sliding ? (sliding.chunk ?? Math.max(1, Math.ceil(sliding.window / 16))) : 0;
  return {
    vocabSize: model.config.vocabSize,
    cache,
    step: async (tokens) => {
      const over = cache.length + tokens[0]!.length - limit;
      if (sliding && over > 0) await model.evictPositions!(cache, sliding.sinkTokens, Math.min(cache.length - sliding.sinkTokens, Math.max(over, chunk)));
      return model.forward(tokens, cache);
    },
    reorder: (indices) => cache.reorder(indices),
    dispose: () => cache.dispose(),
  };
}

/** A session over an encoder-decoder model; the encoder state is borrowed, not owned. */
export function encoderDecoderSession(
  model: EncoderDecoderModel,
  encoderState: EncoderState,
  rowsPerSource: number,
  mode: CacheMode,
  capacityHint: number,
): DecodingSession<EncoderDecoderCache> {
  if (mode === 'none') {
    const rows = encoderState.batchSize * rowsPerSource;
    return new RecomputeSession(rows, (h) => model.decode(h, encoderState, null), model.config.vocabSize);
  }
  const cache: EncoderDecoderCache = model.createCache({ encoderState, rowsPerSource, capacityHint, kind: mode });
  return {
    vocabSize: model.config.vocabSize,
    cache,
    step: (tokens) => model.decode(tokens, encoderState, cache),
    reorder: (indices) => cache.reorder(indices),
    dispose: () => cache.dispose(),
  };
}

/** Keeps every row's tokens and recomputes the whole sequence at each step (no cache). */
class RecomputeSession implements DecodingSession<never> {
  readonly cache = null;
  private histories: number[][];
  constructor(
    rows: number,
    private readonly run: (histories: readonly (readonly number[])[]) => Promise<Logits>,
    readonly vocabSize: number,
  ) {
    this.histories = Array.from({ length: rows }, () => []);
  }
  step(tokens: readonly (readonly number[])[]): Promise<Logits> {
    this.histories = this.histories.map((h, i) => [...h, ...tokens[i]!]);
    return this.run(this.histories);
  }
  reorder(indices: readonly number[]): void {
    this.histories = indices.map((i) => [...this.histories[i]!]);
  }
  dispose(): void {
    this.histories = [];
  }
}
