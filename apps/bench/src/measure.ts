/**
 * One measurement: a model, a backend, a cache mode, a prompt length and a number of new tokens. Runs the same in
 * Node and in the browser (no Node imports here).
 */
import * as tf from '@tensorflow/tfjs-core';
import { createRng, generate, translate, type CacheMode } from '@kvt/core';
import type { WeightFormat } from '@kvt/loaders';
import type { BuiltModel } from './model-zoo.js';

export interface RunSpec {
  readonly model: string;
  readonly backend: string;
  readonly cacheMode: CacheMode;
  readonly promptTokens: number;
  readonly newTokens: number;
  readonly batch: number;
  readonly beams: number;
  /** Tokens generated once before measuring (compiles shaders, warms caches). */
  readonly warmupTokens: number;
  readonly repetitions: number;
  readonly seed: number;
  /** Linear weights on the backend (`--weights`); absent: as the model stores them. */
  readonly weights?: WeightFormat;
}

/** The model a record measured, with its weight format where one was asked for: `llama-110m · q8_0`. */
export function modelLabel(r: RunSpec): string {
  return r.weights ? `${r.model} · ${r.weights}` : r.model;
}

export interface RunRecord extends RunSpec {
  readonly loadMs: number;
  readonly prefillMs: number;
  readonly timeToFirstTokenMs: number;
  /** Decode tokens per second (all rows), from the median step. */
  readonly tokensPerSecond: number;
  /** From the 90th-percentile (slow) step. */
  readonly tokensPerSecondP90: number;
  readonly medianStepMs: number;
  readonly p90StepMs: number;
  /** One entry per decode step: the step that wrote position `promptTokens + i`. */
  readonly stepLatencyMs: number[];
  readonly totalMs: number;
  readonly cacheBytes: number;
  readonly cacheCapacity: number;
  readonly tfMemory: { readonly numTensors: number; readonly numBytes: number };
  /** Process RSS (Node) or JS heap (Chromium) at its highest during the run. */
  readonly peakMemoryBytes: number | null;
  /** WebGL shader programs / WebGPU pipelines compiled during the measured run; and per decode step after the second. */
  readonly shaderPrograms: number | null;
  readonly shaderProgramsPerStepAfterWarmup: number | null;
  /** tfjs kernels dispatched per decode step (from tf.profile of a 1-token and a 3-token run: their difference ÷ 2). */
  readonly kernelsPerDecodeStep: number;
  /** K/V bytes the cache writes per decode step (new rows, or the whole storage where a step rewrites it); null where the cache does not count. */
  readonly kvBytesWrittenPerStep: number | null;
  /**
   * Per decode step, the time the generation pipeline spends outside the model call (logits processing, sampling,
   * stopping checks, detokenization, streaming, the event-loop yield), ms: the median over decode steps of (time
   * between two streamed tokens − that step's model call). Measured in a run of its own (with the model's tokenizer
   * and a stop string where it has one).
   */
  readonly pipelineOverheadMs: number;
  readonly tokens: number[][];
  /** Filled in by the harness: same tokens as every other cache mode of this model and backend. */
  tokensMatch?: boolean | null;
}

export function promptIds(vocab: number, length: number, batch: number, seed: number): number[][] {
  const rng = createRng(seed);
  return Array.from({ length: batch }, () => Array.from({ length }, (_, i) => (i === 0 ? 1 : 3 + Math.floor(rng.next() * (vocab - 3)))));
}

const quantile = (xs: number[], q: number) => {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * (s.length - 1) + 0.5))]!;
};

/** Compiled GPU programs so far: WebGL shader programs or WebGPU pipelines (tfjs's caches); null elsewhere. */
function shaderCount(): number | null {
  const b = tf.backend() as unknown as { binaryCache?: Record<string, unknown>; pipelineCache?: Record<string, unknown> };
  const cache = tf.getBackend() === 'webgl' ? b.binaryCache : tf.getBackend() === 'webgpu' ? b.pipelineCache : undefined;
  return cache ? Object.keys(cache).length : null;
}

export type MemoryProbe = () => number | null;

/**
 * K/V bytes the cache writes per greedy decode step, from its own count (`cache.bytesWritten`) between the prefill's
 * token and the tenth, in a cache made large enough up front (growth is not a step's cost); null for beams, no cache,
 * encoder-decoders, or a cache that does not count.
 */
async function kvBytesPerDecodeStep(built: BuiltModel, spec: RunSpec, inputs: number[][]): Promise<number | null> {
  const { model } = built;
  if (model.kind !== 'decoder-only' || spec.cacheMode === 'none' || spec.beams > 1) return null;
  const steps = 10;
  const cache = model.createCache({ batchSize: inputs.length, capacityHint: spec.promptTokens + steps, kind: spec.cacheMode });
  try {
    const marks: number[] = [];
    await generate(model, { inputIds: inputs, maxNewTokens: steps, stopTokenIds: [], cache, onToken: () => void marks.push(cache.bytesWritten ?? NaN) });
    // a token event per row per step: the first batch comes out of the prefill, the last out of decode step steps − 1
    const [first, last] = [marks[inputs.length - 1], marks[marks.length - 1]];
    return first === undefined || last === undefined || Number.isNaN(first) ? null : (last - first) / (steps - 1);
  } finally {
    cache.dispose();
  }
}

/** Runs one spec on an already built model (the backend must be active). */
export async function measure(built: BuiltModel, spec: RunSpec, loadMs: number, memory: MemoryProbe): Promise<RunRecord> {
  const { model, tokenizer } = built;
  const vocab = model.kind === 'decoder-only' ? model.config.vocabSize : model.config.sourceVocabSize;
  const inputs = promptIds(vocab, spec.promptTokens, spec.batch, spec.seed);
  const common = { cache: spec.cacheMode, stopTokenIds: [] as number[], numBeams: spec.beams };
  const run = async (newTokens: number, onStep?: () => void, text = false) => {
    if (model.kind === 'decoder-only') {
      // text: the full pipeline of a user's stream (detokenization and a stop string that never matches)
      const withText = text && tokenizer ? { tokenizer, stopStrings: ['\u0000'] } : {};
      const r = await generate(model, { ...common, ...withText, inputIds: inputs, maxNewTokens: newTokens, ...(onStep ? { onToken: onStep } : {}) });
      return { tokens: r.sequences.map((s) => s.tokens), timing: r.timing, cache: r.cache };
    }
    const r = await translate(model, { ...common, sourceIds: inputs, maxNewTokens: newTokens, ...(onStep ? { onToken: onStep } : {}) });
    return { tokens: r.translations.map((t) => t.tokens), timing: { ...r.timing, prefillMs: r.timing.encodeMs + r.timing.prefillMs }, cache: r.cache };
  };
  if (spec.warmupTokens > 0) await run(spec.warmupTokens);
  let best: Awaited<ReturnType<typeof run>> | undefined;
  let peak = memory() ?? 0;
  let shaders: number | null = null;
  let shadersAfterWarmup: number | null = null;
  for (let rep = 0; rep < spec.repetitions; rep++) {
    const before = shaderCount();
    let steps = 0;
    let atSecondStep: number | null = null;
    const r = await run(spec.newTokens, () => {
      steps++;
      if (steps === 2 * spec.batch) atSecondStep = shaderCount();
      const m = memory();
      if (m !== null && m > peak) peak = m;
    });
    const after = shaderCount();
    if (before !== null && after !== null) {
      shaders = after - before;
      shadersAfterWarmup = atSecondStep !== null ? (after - atSecondStep) / Math.max(1, spec.newTokens - 2) : null;
    }
    const total = (x: typeof r) => x.timing.prefillMs + x.timing.decodeMs.reduce((a, b) => a + b, 0);
    if (!best || total(r) < total(best)) best = r;
  }
  // dispatches per decode step: a 3-token run less a 1-token run (prefill and sampling alike) is two decode steps
  const kernels = async (n: number) => (await tf.profile(async () => void (await run(n)))).kernels.length;
  const kernelsPerDecodeStep = ((await kernels(3)) - (await kernels(1))) / 2;
  const kvBytesWrittenPerStep = await kvBytesPerDecodeStep(built, spec, inputs);
  // the pipeline's own cost per step: gaps between streamed tokens less the model call that produced each one
  const stamps: number[] = [];
  const timed = await run(Math.min(spec.newTokens, 256), () => void stamps.push(performance.now()), true);
  const rowsPerStep = spec.batch * spec.beams;
  const overheads = timed.timing.decodeMs.flatMap((ms, i) => {
    const a = stamps[(i + 1) * rowsPerStep - 1];
    const b = stamps[(i + 2) * rowsPerStep - 1];
    return a !== undefined && b !== undefined ? [b - a - ms] : [];
  });
  const pipelineOverheadMs = overheads.length > 0 ? quantile(overheads, 0.5) : NaN; // beams stream nothing to time
  const r = best!;
  const steps = r.timing.decodeMs;
  const median = quantile(steps, 0.5);
  const p90 = quantile(steps, 0.9);
  const rows = spec.batch;
  return {
    ...spec,
    loadMs,
    prefillMs: r.timing.prefillMs,
    timeToFirstTokenMs: r.timing.firstTokenMs,
    tokensPerSecond: median > 0 ? (1000 * rows) / median : 0,
    tokensPerSecondP90: p90 > 0 ? (1000 * rows) / p90 : 0,
    medianStepMs: median,
    p90StepMs: p90,
    stepLatencyMs: steps,
    totalMs: r.timing.totalMs,
    cacheBytes: r.cache?.bytes ?? 0,
    cacheCapacity: r.cache?.capacity ?? 0,
    tfMemory: { numTensors: tf.memory().numTensors, numBytes: tf.memory().numBytes },
    peakMemoryBytes: peak || null,
    shaderPrograms: shaders,
    shaderProgramsPerStepAfterWarmup: shadersAfterWarmup,
    kernelsPerDecodeStep,
    kvBytesWrittenPerStep,
    pipelineOverheadMs,
    tokens: r.tokens,
  };
}
