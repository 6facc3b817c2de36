import * as tf from '@tensorflow/tfjs-core';
import { CacheStateError, InvalidOptionError, UnsupportedError, type Cache, type ModelConfig, type SpecialTokens } from '@kvt/core';
import { KVCacheContainer, KvtLlamaBlock, cacheTakesKernel, runLlamaBlock, weightCode, type KVCache, type LlamaBlockAttrs, type WeightFormat } from '@kvt/kernels';
import { activate, embed, linear, mergeHeads, norm, splitHeads, upload, type Embedding, type Linear, type Norm } from '../layers/ops.js';
import { GrowingTable, applyRotary, rotaryTables, type Rotary } from '../layers/positions.js';
import type { ParameterSet } from '../weights/host-tensor.js';
import { LinearWeights, formatOf, weightBytes, type LinearWeight } from '../weights/linear-weights.js';
import { requirePlausiblePositions, requirePositiveFinite, requirePositiveIntegers, requireTokenIds } from './config-checks.js';
import { DecoderOnlyTransformer } from './decoder-only.js';

/**
 * Llama family: RMSNorm, rotary positions, grouped-query attention (numKvHeads ≤ numHeads), SwiGLU, tied or separate
 * output projection.
 */
export interface LlamaConfig {
  readonly architecture: 'llama';
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  /** Default hiddenSize / numHeads. */
  readonly headDim?: number;
  readonly maxPositions: number;
  /** Default 1e-5. */
  readonly normEpsilon?: number;
  /** Default 10000. */
  readonly ropeTheta?: number;
  /** 'interleaved' (llama2.c, GGUF; the default) or 'half' (Hugging Face). */
  readonly ropeStyle?: 'interleaved' | 'half';
  readonly specialTokens: SpecialTokens;
}

/**
 * Parameters, kvt layout (Linear weights `[in, out]`): `embedding` [vocab, hidden]; per layer i:
 * `layers.i.attentionNorm` [hidden], `layers.i.q` [hidden, heads·hd], `layers.i.k`/`v` [hidden, kvHeads·hd],
 * `layers.i.o` [heads·hd, hidden], `layers.i.ffnNorm` [hidden], `layers.i.gate`/`up` [hidden, inter],
 * `layers.i.down` [inter, hidden]; `finalNorm` [hidden]; `output` [hidden, vocab] (absent when tied).
 */
interface LlamaLayer {
  readonly attentionNorm: Norm;
  readonly qkv: Linear; // [hidden, (heads + 2·kvHeads)·hd]
  readonly o: Linear; // [heads·hd, hidden]
  readonly ffnNorm: Norm;
  readonly gateUp: Linear; // [hidden, 2·inter]
  readonly down: Linear; // [inter, hidden]
}

/** How to build a model from its parameters. */
export interface BuildOptions {
  /**
   * The format of the linear weights (and a tied embedding): `'fp32'`, or converted at load (`'fp16'`, `'q8_0'`,
   * `'q4_0'`). Default: as stored (a GGUF file's quantized and F16 tensors stay so, float ones stay float32).
   */
  readonly weights?: WeightFormat;
}

export class LlamaModel extends DecoderOnlyTransformer {
  readonly config: ModelConfig & { readonly llama: LlamaConfig };
  protected readonly ownedTensors: tf.Tensor[];
  private readonly embedding: Embedding;
  private readonly output: Linear;
  private readonly layers: LlamaLayer[];
  private readonly finalNorm: Norm;
  private readonly rotary: GrowingTable<Rotary>;
  private rotaryNow!: Rotary;
  /** Bytes of the weights as held on the backend, by format. */
  readonly weightBytes: Readonly<Record<string, number>>;

  private constructor(config: LlamaConfig, p: ParameterSet, options: BuildOptions = {}) {
    super();
    validateLlamaConfig(config);
    const hd = config.headDim ?? config.hiddenSize / config.numHeads;
    const d = config.hiddenSize;
    const eps = config.normEpsilon ?? 1e-5;
    this.config = {
      architecture: 'llama',
      numLayers: config.numLayers,
      numHeads: config.numHeads,
      numKvHeads: config.numKvHeads,
      headDim: hd,
      vocabSize: config.vocabSize,
      maxPositions: config.maxPositions,
      specialTokens: config.specialTokens,
      llama: config,
    };
    const owned: tf.Tensor[] = [];
    let rotary: GrowingTable<Rotary> | undefined;
    try {
      const up = (name: string, shape: number[]) => {
        const t = upload(p.take(name, shape));
        owned.push(t);
        return t;
      };
      const rms = (name: string): Norm => ({ kind: 'rms', weight: up(name, [d]) as tf.Tensor1D, epsilon: eps });
      const weights = new LinearWeights(p, options.weights, <T extends tf.Tensor>(t: T) => (owned.push(t), t));
      const fused = (names: string[], rows: number, cols: number[]): Linear => ({ w: weights.linear(names, rows, cols) });
      const { numHeads: H, numKvHeads: KV, intermediateSize: F, vocabSize: V } = config;
      // the embedding first: its transposed copy's temporary is freed before the layers need the room
      const rows = p.has('output') ? undefined : weights.table('embedding', V, d);
      if (p.has('output')) {
        this.output = fused(['output'], d, [V]);
        this.embedding = { table: up('embedding', [V, d]) as tf.Tensor2D };
      } else if (rows) {
        // tied, held as rows (quantized, fp16, or float32 rows): the rows [vocab, hidden] serve the lookup and the projection
        this.output = { w: rows };
        this.embedding = { rows };
      } else {
        // tied: keep only the transposed table [hidden, vocab], used for both lookup and projection
        const e = p.take('embedding', [V, d]);
        const t = tf.tidy(() => tf.transpose(upload(e))) as tf.Tensor2D;
        owned.push(t);
        this.output = { w: t };
        this.embedding = { transposed: t };
      }
      this.layers = Array.from({ length: config.numLayers }, (_, i) => ({
        attentionNorm: rms(`layers.${i}.attentionNorm`),
        qkv: fused([`layers.${i}.q`, `layers.${i}.k`, `layers.${i}.v`], d, [H * hd, KV * hd, KV * hd]),
        o: fused([`layers.${i}.o`], H * hd, [d]),
        ffnNorm: rms(`layers.${i}.ffnNorm`),
        gateUp: fused([`layers.${i}.gate`, `layers.${i}.up`], d, [F, F]),
        down: fused([`layers.${i}.down`], F, [d]),
      }));
      this.finalNorm = rms('finalNorm');
      const theta = config.ropeTheta ?? 10000;
      const style = config.ropeStyle ?? 'interleaved';
      this.rotary = rotary = new GrowingTable(
        config.maxPositions,
        (rows) => rotaryTables(rows, hd, theta, style),
        (r) => (r.cos.dispose(), r.sin.dispose()),
      );
      this.rotaryNow = this.rotary.get(1); // the first 1024 rows now; more only when used
    } catch (e) {
      // a missing or misshapen tensor: release what was uploaded
      owned.forEach((t) => t.dispose());
      rotary?.dispose();
      throw e;
    }
    this.ownedTensors = owned;
    const bytes: Record<string, number> = {};
    const count = (w: LinearWeight) => (bytes[formatOf(w)] = (bytes[formatOf(w)] ?? 0) + weightBytes(w));
    for (const l of this.layers) [l.qkv, l.o, l.gateUp, l.down].forEach((x) => count(x.w));
    count(this.output.w);
    this.weightBytes = bytes;
  }

  /**
   * Builds a Llama model from parameters in kvt's layout (see {@link LlamaConfig}); uploads them to the active backend.
   *
   * @example
   * ```ts
   * const model = LlamaModel.fromParameters(config, randomLlamaParameters(config, 42));
   * const small = LlamaModel.fromParameters(config, randomLlamaParameters(config, 42), { weights: 'q8_0' });
   * ```
   */
  static fromParameters(config: LlamaConfig, params: ParameterSet, options: BuildOptions = {}): LlamaModel {
    return new LlamaModel(config, params, options);
  }

  protected override prepare(positions: number): void {
    this.rotaryNow = this.rotary.get(positions);
  }

  override dispose(): void {
    this.rotary.dispose();
    super.dispose();
  }

  /**
   * Removes positions `[start, start + count)` of every row of a kvt cache and moves the later ones down by `count`:
   * their keys are rotated back by `count` positions, so each key sits at its position within the cache, as
   * StreamingLLM keeps attention sinks and a sliding window for rotary models. New tokens then take positions after
   * what the cache holds.
   *
   * @example
   * ```ts
   * await model.evictPositions(cache, 4, 16); // keep 4 sink positions, drop the 16 after them
   * ```
   */
  async evictPositions(cache: Cache, start: number, count: number): Promise<void> {
    if (!(cache instanceof KVCacheContainer)) throw new UnsupportedError('evictPositions needs a kvt cache (model.createCache).');
    const len = cache.length;
    if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 1 || start + count > len)
      throw new CacheStateError(`evictPositions(${start}, ${count}): the cache holds ${len} positions.`);
    if (cache.padding.some((p) => p > start)) throw new CacheStateError('evictPositions: a row\'s left padding reaches past the first evicted position.');
    const { numKvHeads: KV, headDim: hd } = this.config;
    const { ropeTheta = 10000, ropeStyle = 'interleaved' } = this.config.llama;
    const rows = cache.batchSize;
    const kept = len - count;
    // rotating back by `count` positions: angle count · freq_i for pair i (the frequencies of rotaryTables)
    const half = hd / 2;
    const cos = new Float64Array(half);
    const sin = new Float64Array(half);
    for (let i = 0; i < half; i++) {
      const angle = count * Math.fround(1 / Math.pow(ropeTheta, Math.fround((2 * i) / hd)));
      cos[i] = Math.cos(angle);
      sin[i] = Math.sin(angle);
    }
    const read = await Promise.all(Array.from({ length: this.config.numLayers }, (_, l) => cache.read(l)));
    const layers = read.map(({ k, v }) => {
      // [rows, KV, len, hd]
      const [k2, v2] = [new Float32Array(rows * KV * kept * hd), new Float32Array(rows * KV * kept * hd)];
      for (let h = 0; h < rows * KV; h++) {
        const from = h * len * hd;
        const to = h * kept * hd;
        for (const [src, dst] of [[k, k2], [v, v2]] as const) {
          dst.set(src.subarray(from, from + start * hd), to);
          dst.set(src.subarray(from + (start + count) * hd, from + len * hd), to + start * hd);
        }
        for (let p = start; p < kept; p++) {
          const row = to + p * hd;
          for (let i = 0; i < half; i++) {
            const [a, b] = ropeStyle === 'half' ? [row + i, row + i + half] : [row + 2 * i, row + 2 * i + 1];
            const x0 = k2[a]!;
            const x1 = k2[b]!;
            k2[a] = x0 * cos[i]! + x1 * sin[i]!;
            k2[b] = x1 * cos[i]! - x0 * sin[i]!;
          }
        }
      }
      return { k: k2, v: v2 };
    });
    const padding = [...cache.padding];
    cache.truncate(0);
    cache.write(layers, kept, padding);
  }

  protected hidden(ids: tf.Tensor2D, positions: tf.Tensor2D, cache: KVCache): tf.Tensor3D {
    const { numHeads: H, numKvHeads: KV, headDim: hd } = this.config;
    const F = this.config.llama.intermediateSize;
    const scale = 1 / Math.sqrt(hd);
    let x: tf.Tensor3D = embed(ids, this.embedding); // [b, n, hidden]
    if (cacheTakesKernel(cache, KvtLlamaBlock)) return norm(this.fusedBlocks(x, cache), this.finalNorm) as tf.Tensor3D;
    this.layers.forEach((layer, l) => {
      const h = norm(x, layer.attentionNorm);
      const [q, k, v] = tf.split(linear(h, layer.qkv), [H * hd, KV * hd, KV * hd], 2);
      const qh = tf.mul(applyRotary(splitHeads(q!, H, hd), positions, this.rotaryNow), scale) as tf.Tensor4D; // [b, H, n, hd]
      const kh = applyRotary(splitHeads(k!, KV, hd), positions, this.rotaryNow); // [b, KV, n, hd]
      const attention = cache.attend(l, qh, kh, splitHeads(v!, KV, hd)); // [b, H, n, hd]
      x = tf.add(x, linear(mergeHeads(attention), layer.o));
      const h2 = norm(x, layer.ffnNorm);
      const [gate, up] = tf.split(linear(h2, layer.gateUp), [F, F], 2);
      x = tf.add(x, linear(tf.mul(activate(gate!, 'silu'), up!), layer.down));
    });
    return norm(x, this.finalNorm) as tf.Tensor3D;
  }

  /** Every block by the backend's fused kernel (one call per layer; positions come from the cache). */
  private fusedBlocks(x: tf.Tensor3D, cache: KVCache): tf.Tensor3D {
    const [b, n, d] = x.shape;
    const { numHeads, numKvHeads, headDim } = this.config;
    const { intermediateSize, ropeStyle = 'interleaved' } = this.config.llama;
    const epsilon = this.layers[0]?.attentionNorm.epsilon ?? 1e-5;
    const first = this.layers[0];
    const weightCodes = first ? ([first.qkv, first.o, first.gateUp, first.down].map((x) => weightCode(x.w)) as unknown as LlamaBlockAttrs['weightCodes']) : undefined;
    const attrs: Omit<LlamaBlockAttrs, 'layer'> = {
      cache, newPositions: n, numHeads, numKvHeads, headDim, intermediateSize, epsilon, ropeStyle, ...(weightCodes ? { weightCodes } : {}),
    };
    let h = tf.reshape(x, [b * n, d]) as tf.Tensor2D; // rows of batch row r at [r·n, (r+1)·n)
    this.layers.forEach((layer, l) => {
      const tensorOf = (w: LinearWeight) => (w instanceof tf.Tensor ? w : w.w);
      const inputs = {
        x: h,
        attentionNorm: layer.attentionNorm.weight,
        qkv: tensorOf(layer.qkv.w),
        o: tensorOf(layer.o.w),
        ffnNorm: layer.ffnNorm.weight,
        gateUp: tensorOf(layer.gateUp.w),
        down: tensorOf(layer.down.w),
        cos: this.rotaryNow.cos,
        sin: this.rotaryNow.sin,
      };
      h = runLlamaBlock(inputs, { ...attrs, layer: l })!;
    });
    return tf.reshape(h, [b, n, d]);
  }

  protected project(h: tf.Tensor3D): tf.Tensor3D {
    return linear(h, this.output) as tf.Tensor3D;
  }
}

export function validateLlamaConfig(c: LlamaConfig): void {
  requirePositiveIntegers(c, ['vocabSize', 'hiddenSize', 'intermediateSize', 'numLayers', 'numHeads', 'numKvHeads', 'maxPositions'], 'llama');
  requirePlausiblePositions(c.maxPositions, 'llama');
  requirePositiveFinite(c.normEpsilon, 'llama.normEpsilon');
  requirePositiveFinite(c.ropeTheta, 'llama.ropeTheta');
  requireTokenIds(c.specialTokens, c.vocabSize, 'llama');
  if (c.numHeads % c.numKvHeads !== 0)
    throw new InvalidOptionError('llama.numKvHeads', c.numKvHeads, `a divisor of numHeads (${c.numHeads})`);
  const hd = c.headDim ?? c.hiddenSize / c.numHeads;
  if (!Number.isInteger(hd) || hd % 2 !== 0)
    throw new InvalidOptionError('llama.headDim', hd, 'an even integer (hiddenSize / numHeads unless given)');
}
