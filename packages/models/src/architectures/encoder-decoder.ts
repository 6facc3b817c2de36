import * as tf from '@tensorflow/tfjs-core';
import {
  CacheStateError,
  DisposedError,
  InvalidOptionError,
  PromptTooLongError,
  ShapeMismatchError,
  type EncoderDecoderModel,
  type EncoderState,
  type ForwardOptions,
  type Logits,
  type ModelConfig,
  type SpecialTokens,
} from '@kvt/core';
import { EncoderDecoderKVCache, type CrossKV } from '../kv-cache/encoder-decoder-cache.js';
import { MASKED } from '../kv-cache/attention-mask.js';
import { createKVCache } from '../kv-cache/registry.js';
import {
  activate,
  embed,
  linear,
  mergeHeads,
  norm,
  splitHeads,
  upload,
  type Activation,
  type Embedding,
  type Linear,
  type Norm,
} from '../layers/ops.js';
import { GrowingTable, sinusoidalTable, type PositionSpec } from '../layers/positions.js';
import type { ParameterSet } from '../weights/host-tensor.js';
import { LinearWeights } from '../weights/linear-weights.js';
import type { BuildOptions } from './llama.js';
import { requirePlausiblePositions, requirePositiveFinite, requirePositiveIntegers, requireTokenIds } from './config-checks.js';
import { checkIds } from './decoder-only.js';

/**
 * Encoder-decoder Transformers: Vaswani, Marian, BART, OpenNMT / CTranslate2.
 */
export interface EncoderDecoderConfig {
  readonly architecture: 'encoder-decoder';
  readonly dModel: number;
  readonly numHeads: number;
  readonly encoderLayers: number;
  readonly decoderLayers: number;
  readonly ffnDim: number;
  readonly sourceVocabSize: number;
  readonly targetVocabSize: number;
  readonly maxPositions: number;
  /** 'pre': x + f(LN(x)) (OpenNMT, CTranslate2); 'post': LN(x + f(x)) (Vaswani, Marian, BART). */
  readonly normPlacement: 'pre' | 'post';
  /** Default 1e-5. */
  readonly normEpsilon?: number;
  readonly activation: Activation;
  readonly positions: PositionSpec;
  /** Multiply token embeddings by √dModel (Marian, OpenNMT). */
  readonly scaleEmbedding: boolean;
  /** A LayerNorm right after embeddings + positions (BART's layernorm_embedding). */
  readonly embeddingNorm?: boolean;
  /** A LayerNorm on the encoder's output (pre-norm models). */
  readonly encoderFinalNorm?: boolean;
  /** A LayerNorm before the output projection (pre-norm models). */
  readonly decoderFinalNorm?: boolean;
  readonly specialTokens: SpecialTokens & { readonly decoderStart: number };
}

interface AttentionWeights {
  readonly qkv: Linear; // self: [d, 3d]; cross: unused
  readonly q: Linear; // [d, d]
  readonly kv: Linear; // [d, 2d]
  readonly o: Linear; // [d, d]
}

interface Layer {
  readonly selfAttention: AttentionWeights;
  readonly selfAttentionNorm: Norm;
  readonly crossAttention?: AttentionWeights;
  readonly crossAttentionNorm?: Norm;
  readonly up: Linear; // [d, ffn]
  readonly down: Linear; // [ffn, d]
  readonly ffnNorm: Norm;
}

/** The encoder's output for a batch of sources, right-padded. Owned by whoever called `encode`. */
export class TfEncoderState implements EncoderState {
  private isDisposed = false;
  constructor(
    readonly output: tf.Tensor3D, // [sources, sourceLength, d]
    readonly mask: tf.Tensor4D, // [sources, 1, 1, sourceLength], 0 or MASKED
    readonly sourceLengths: readonly number[],
  ) {}
  get batchSize() {
    return this.sourceLengths.length;
  }
  get disposed() {
    return this.isDisposed;
  }
  dispose(): void {
    if (this.isDisposed) return;
    this.output.dispose();
    this.mask.dispose();
    this.isDisposed = true;
  }
}

/**
 * Cross-attention with K/V shared by groups of rows: q `[rows, H, n, hd]`, rows = sources × G, over k, v
 * `[sources, H, S, hd]` and mask `[sources, 1, 1, S]`. The G rows of a source are folded into the query axis, so
 * beams never copy the source's K/V. Returns `[rows, H, n, hd]`.
 */
export function groupedCrossAttention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, mask: tf.Tensor4D): tf.Tensor4D {
  const [rows, H, n, hd] = q.shape;
  const sources = k.shape[0];
  const G = rows / sources;
  const fold = (t: tf.Tensor): tf.Tensor4D =>
    G === 1 ? (t as tf.Tensor4D) : tf.reshape(tf.transpose(tf.reshape(t, [sources, G, H, n, hd]), [0, 2, 1, 3, 4]), [sources, H, G * n, hd]);
  const scores = tf.add(tf.matMul(fold(q), k, false, true), mask); // [sources, H, G·n, S]
  const out = tf.matMul(tf.softmax(scores), v); // [sources, H, G·n, hd]
  return G === 1 ? (out as tf.Tensor4D) : tf.reshape(tf.transpose(tf.reshape(out, [sources, H, G, n, hd]), [0, 2, 1, 3, 4]), [rows, H, n, hd]);
}

/**
 * An encoder-decoder Transformer on tfjs ops. Parameters in kvt's layout (Linear weights `[in, out]`, biases
 * optional): `sourceEmbedding` [srcVocab, d]; `targetEmbedding` [tgtVocab, d] (absent: shared with the source);
 * `output` [d, tgtVocab] (absent: tied to the target embedding); `outputBias` [tgtVocab] (optional);
 * `encoder.positions` / `decoder.positions` [maxPositions + offset, d] (learned positions only);
 * `{encoder,decoder}.embeddingNorm.{weight,bias}`; per layer `{side}.layers.i.selfAttention.{q,k,v,o}`,
 * `.selfAttentionNorm`, decoder `.crossAttention.{q,k,v,o}`, `.crossAttentionNorm`, `.ffn.up` [d, ffn],
 * `.ffn.down` [ffn, d], `.ffnNorm`; `{encoder,decoder}.finalNorm`.
 *
 * @example
 * ```ts
 * const model = EncoderDecoderTransformer.fromParameters(config, params);
 * const { translations } = await translate(model, { sourceIds: [[5, 6, 7]] });
 * ```
 */
export class EncoderDecoderTransformer implements EncoderDecoderModel {
  readonly kind = 'encoder-decoder' as const;
  readonly config: ModelConfig & { readonly sourceVocabSize: number; readonly encoderDecoder: EncoderDecoderConfig };
  /** How many times cross-attention K/V were projected (one per decoder layer per cache). */
  readonly counters = { crossAttentionProjections: 0 };
  private readonly owned = new Set<tf.Tensor>();
  private readonly sourceEmbedding: Embedding;
  private readonly targetEmbedding: Embedding;
  private readonly output: Linear;
  // [maxPositions + offset, d]: learned tables from the weights, or sinusoidal ones grown on demand
  private readonly encoderPositions: GrowingTable<tf.Tensor2D>;
  private readonly decoderPositions: GrowingTable<tf.Tensor2D>;
  private encoderPositionsNow!: tf.Tensor2D;
  private decoderPositionsNow!: tf.Tensor2D;
  private readonly encoderEmbeddingNorm?: Norm;
  private readonly decoderEmbeddingNorm?: Norm;
  private readonly encoder: Layer[];
  private readonly decoder: Layer[];
  private readonly encoderFinalNorm?: Norm;
  private readonly decoderFinalNorm?: Norm;
  private isDisposed = false;

  private constructor(
    private readonly c: EncoderDecoderConfig,
    p: ParameterSet,
    options: BuildOptions = {},
  ) {
    requirePositiveIntegers(c, ['dModel', 'numHeads', 'encoderLayers', 'decoderLayers', 'ffnDim', 'sourceVocabSize', 'targetVocabSize', 'maxPositions'], 'encoderDecoder');
    requirePlausiblePositions(c.maxPositions, 'encoderDecoder');
    requirePositiveFinite(c.normEpsilon, 'encoderDecoder.normEpsilon');
    requireTokenIds(c.specialTokens, c.targetVocabSize, 'encoderDecoder');
    if (c.dModel % c.numHeads !== 0) throw new InvalidOptionError('encoderDecoder.numHeads', c.numHeads, `a divisor of dModel (${c.dModel})`);
    if (!Number.isInteger(c.specialTokens.decoderStart))
      throw new InvalidOptionError('encoderDecoder.specialTokens.decoderStart', c.specialTokens.decoderStart, 'a token id');
    const d = c.dModel;
    const eps = c.normEpsilon ?? 1e-5;
    this.config = {
      architecture: 'encoder-decoder',
      numLayers: c.decoderLayers,
      numHeads: c.numHeads,
      numKvHeads: c.numHeads,
      headDim: d / c.numHeads,
      vocabSize: c.targetVocabSize,
      sourceVocabSize: c.sourceVocabSize,
      maxPositions: c.maxPositions,
      specialTokens: c.specialTokens,
      encoderDecoder: c,
    };
    let sinusoid: GrowingTable<tf.Tensor2D> | undefined;
    try {
      const keep = <T extends tf.Tensor>(t: T): T => (this.owned.add(t), t);
      const up = <T extends tf.Tensor>(name: string, shape: number[]) => keep(upload(p.take(name, shape)) as T);
      const opt = <T extends tf.Tensor>(name: string, shape: number[]) => {
        const h = p.optional(name, shape);
        return h ? keep(upload(h) as T) : undefined;
      };
      const weights = new LinearWeights(p, options.weights, keep);
      const lin = (name: string, i: number, o: number): Linear => {
        const b = opt<tf.Tensor1D>(`${name}.bias`, [o]);
        return { w: weights.linear([name], i, [o]), ...(b ? { b } : {}) };
      };
      const ln = (name: string): Norm => {
        const b = opt<tf.Tensor1D>(`${name}.bias`, [d]);
        return { kind: 'layer', weight: up(`${name}.weight`, [d]), ...(b ? { bias: b } : {}), epsilon: eps };
      };
      // Fused projections: one matMul instead of three (self q,k,v) or two (cross k,v).
      const fuse = (names: string[]): Linear => {
        const bs = names.map((n) => p.optional(`${n}.bias`, [d]));
        const w = weights.linear(names, d, names.map(() => d));
        const b = bs.every((x) => x)
          ? keep(tf.tidy(() => tf.concat(bs.map((x) => upload(x!)), 0)) as tf.Tensor1D)
          : bs.some((x) => x)
            ? keep(tf.tidy(() => tf.concat(bs.map((x) => (x ? upload(x) : tf.zeros([d]))), 0)) as tf.Tensor1D)
            : undefined;
        return { w, ...(b ? { b } : {}) };
      };
      const attention = (prefix: string, self: boolean): AttentionWeights => {
        const o = lin(`${prefix}.o`, d, d);
        if (self) {
          const qkv = fuse([`${prefix}.q`, `${prefix}.k`, `${prefix}.v`]);
          return { qkv, q: qkv, kv: qkv, o };
        }
        const q = lin(`${prefix}.q`, d, d);
        return { qkv: q, q, kv: fuse([`${prefix}.k`, `${prefix}.v`]), o };
      };
      const layer = (side: 'encoder' | 'decoder', i: number): Layer => {
        const pre = `${side}.layers.${i}`;
        return {
          selfAttention: attention(`${pre}.selfAttention`, true),
          selfAttentionNorm: ln(`${pre}.selfAttentionNorm`),
          ...(side === 'decoder'
            ? { crossAttention: attention(`${pre}.crossAttention`, false), crossAttentionNorm: ln(`${pre}.crossAttentionNorm`) }
            : {}),
          up: lin(`${pre}.ffn.up`, d, c.ffnDim),
          down: lin(`${pre}.ffn.down`, c.ffnDim, d),
          ffnNorm: ln(`${pre}.ffnNorm`),
        };
      };
      this.encoder = Array.from({ length: c.encoderLayers }, (_, i) => layer('encoder', i));
      this.decoder = Array.from({ length: c.decoderLayers }, (_, i) => layer('decoder', i));
      if (c.encoderFinalNorm) this.encoderFinalNorm = ln('encoder.finalNorm');
      if (c.decoderFinalNorm) this.decoderFinalNorm = ln('decoder.finalNorm');
      if (c.embeddingNorm) {
        this.encoderEmbeddingNorm = ln('encoder.embeddingNorm');
        this.decoderEmbeddingNorm = ln('decoder.embeddingNorm');
      }
      // Embeddings: an output tied to the target embedding keeps one [d, vocab] copy, looked up by columns.
      const srcV = c.sourceVocabSize;
      const tgtV = c.targetVocabSize;
      const bias = opt<tf.Tensor1D>('outputBias', [tgtV]);
      const targetTable = p.has('targetEmbedding') ? 'targetEmbedding' : 'sourceEmbedding';
      if (targetTable === 'sourceEmbedding' && srcV !== tgtV)
        throw new ShapeMismatchError('targetEmbedding', [tgtV, d], 'missing', 'give a target embedding when vocabularies differ');
      const tiedRows = p.has('output') ? undefined : weights.table(targetTable, tgtV, d);
      if (p.has('output')) {
        this.output = { w: weights.linear(['output'], d, [tgtV]), ...(bias ? { b: bias } : {}) };
        this.targetEmbedding = { table: up(targetTable, [tgtV, d]) };
      } else if (tiedRows) {
        // tied and quantized: the rows [vocab, d] serve the lookup and the projection
        this.output = { w: tiedRows, ...(bias ? { b: bias } : {}) };
        this.targetEmbedding = { rows: tiedRows };
      } else {
        const t = keep(tf.tidy(() => tf.transpose(upload(p.take(targetTable, [tgtV, d])))) as tf.Tensor2D);
        this.output = { w: t, ...(bias ? { b: bias } : {}) };
        this.targetEmbedding = { transposed: t };
      }
      this.sourceEmbedding =
        targetTable === 'sourceEmbedding' ? this.targetEmbedding : { table: up('sourceEmbedding', [srcV, d]) };
      const rows = c.maxPositions + c.positions.offset;
      if (c.positions.kind === 'learned') {
        const enc = up<tf.Tensor2D>('encoder.positions', [rows, d]);
        const dec = up<tf.Tensor2D>('decoder.positions', [rows, d]);
        this.encoderPositions = new GrowingTable(rows, () => enc, () => {});
        this.decoderPositions = new GrowingTable(rows, () => dec, () => {});
      } else {
        const spec = c.positions;
        const table = (sinusoid = new GrowingTable(rows, (n) => tf.tensor2d(sinusoidalTable(n, d, spec), [n, d]), (t) => t.dispose()));
        this.encoderPositions = table;
        this.decoderPositions = table;
      }
      this.encoderPositionsNow = this.encoderPositions.get(1); // the first 1024 rows now; more only when used
      this.decoderPositionsNow = this.decoderPositions.get(1);
    } catch (e) {
      for (const t of this.owned) t.dispose();
      this.owned.clear();
      sinusoid?.dispose();
      throw e;
    }
  }

  static fromParameters(config: EncoderDecoderConfig, params: ParameterSet, options: BuildOptions = {}): EncoderDecoderTransformer {
    return new EncoderDecoderTransformer(config, params, options);
  }

  /** Token embeddings (scaled) + positions (+ embedding norm): ids `[b, n]` → `[b, n, d]`. */
  private embedTokens(ids: tf.Tensor2D, start: number, side: 'encoder' | 'decoder'): tf.Tensor3D {
    const c = this.c;
    const [, n] = ids.shape;
    let x: tf.Tensor = embed(ids, side === 'encoder' ? this.sourceEmbedding : this.targetEmbedding);
    if (c.scaleEmbedding) x = tf.mul(x, Math.sqrt(c.dModel));
    const table = side === 'encoder' ? this.encoderPositionsNow : this.decoderPositionsNow;
    x = tf.add(x, tf.slice(table, [start + c.positions.offset, 0], [n, -1]));
    const en = side === 'encoder' ? this.encoderEmbeddingNorm : this.decoderEmbeddingNorm;
    return (en ? norm(x, en) : x) as tf.Tensor3D;
  }

  /** A residual block, pre- or post-norm. */
  private block(x: tf.Tensor3D, n: Norm, f: (h: tf.Tensor3D) => tf.Tensor3D): tf.Tensor3D {
    if (this.c.normPlacement === 'pre') return tf.add(x, f(norm(x, n) as tf.Tensor3D));
    return norm(tf.add(x, f(x)), n) as tf.Tensor3D;
  }

  private ffn(h: tf.Tensor3D, l: Layer): tf.Tensor3D {
    return linear(activate(linear(h, l.up), this.c.activation), l.down) as tf.Tensor3D;
  }

  async encode(sourceIds: readonly (readonly number[])[]): Promise<TfEncoderState> {
    this.check();
    const c = this.c;
    checkIds(sourceIds, c.sourceVocabSize, 'sourceIds');
    const lengths = sourceIds.map((r) => r.length);
    const S = Math.max(...lengths);
    if (S > c.maxPositions) throw new PromptTooLongError(S, 0, c.maxPositions);
    const b = sourceIds.length;
    const ids = new Int32Array(b * S).fill(c.specialTokens.pad ?? 0);
    const mask = new Float32Array(b * S);
    sourceIds.forEach((r, i) => {
      ids.set(r, i * S);
      mask.fill(MASKED, i * S + r.length, (i + 1) * S);
    });
    const H = c.numHeads;
    const hd = c.dModel / H;
    this.encoderPositionsNow = this.encoderPositions.get(S + c.positions.offset);
    const [output, maskT] = tf.tidy(() => {
      const m = tf.tensor4d(mask, [b, 1, 1, S]);
      let x = this.embedTokens(tf.tensor2d(ids, [b, S], 'int32'), 0, 'encoder');
      for (const l of this.encoder) {
        x = this.block(x, l.selfAttentionNorm, (h) => {
          const [q, k, v] = tf.split(linear(h, l.selfAttention.qkv), 3, 2);
          const qh = tf.mul(splitHeads(q!, H, hd), 1 / Math.sqrt(hd)) as tf.Tensor4D;
          return linear(mergeHeads(groupedCrossAttention(qh, splitHeads(k!, H, hd), splitHeads(v!, H, hd), m)), l.selfAttention.o) as tf.Tensor3D;
        });
        x = this.block(x, l.ffnNorm, (h) => this.ffn(h, l));
      }
      if (this.encoderFinalNorm) x = norm(x, this.encoderFinalNorm) as tf.Tensor3D;
      return [x, m] as const;
    });
    return new TfEncoderState(output, maskT, lengths);
  }

  createCache(options: {
    readonly encoderState: EncoderState;
    readonly rowsPerSource?: number;
    readonly capacityHint?: number;
    readonly kind?: 'auto' | 'backend' | 'concat';
  }): EncoderDecoderKVCache {
    this.check();
    const state = this.state(options.encoderState);
    const G = options.rowsPerSource ?? 1;
    if (!Number.isInteger(G) || G < 1) throw new InvalidOptionError('rowsPerSource', G, 'an integer ≥ 1');
    const self = createKVCache(
      {
        numLayers: this.c.decoderLayers,
        batchSize: state.batchSize * G,
        numKvHeads: this.c.numHeads,
        headDim: this.config.headDim,
        maxLength: this.c.maxPositions,
        ...(options.capacityHint !== undefined ? { capacityHint: options.capacityHint } : {}),
      },
      options.kind ?? 'auto',
    );
    return new EncoderDecoderKVCache(self, state.batchSize, G, state);
  }

  async decode(
    targetIds: readonly (readonly number[])[],
    encoderState: EncoderState,
    cache: EncoderDecoderKVCache | null,
    options?: ForwardOptions,
  ): Promise<Logits> {
    this.check();
    const c = this.c;
    const state = this.state(encoderState);
    checkIds(targetIds, c.targetVocabSize, 'targetIds');
    const rows = targetIds.length;
    const n = targetIds[0]!.length;
    if (targetIds.some((r) => r.length !== n))
      throw new ShapeMismatchError('targetIds', `[${rows}, ${n}]`, `rows of ${targetIds.map((r) => r.length).join('/')}`, 'every row gives the same number of tokens');
    if (rows % state.batchSize !== 0)
      throw new ShapeMismatchError('targetIds', `[k × ${state.batchSize}, n]`, [rows, n], 'rows are grouped evenly over the sources');
    const kv = cache ?? this.createCache({ encoderState: state, rowsPerSource: rows / state.batchSize, kind: 'concat' });
    try {
      if (kv.disposed) throw new DisposedError('encoder-decoder cache');
      if (kv.encoderState !== state) throw new CacheStateError('This cache was made for another encoder state; create one with this state.');
      if (rows !== kv.batchSize) throw new ShapeMismatchError('targetIds', [kv.batchSize, n], [rows, n], 'one row per cache row');
      const start = kv.length;
      if (start + n > c.maxPositions) throw new PromptTooLongError(start + n, 0, c.maxPositions);
      const H = c.numHeads;
      const hd = c.dModel / H;
      const all = options?.logits === 'all';
      this.decoderPositionsNow = this.decoderPositions.get(start + n + c.positions.offset);
      const logits = tf.tidy(() => {
        if (!kv.cross) kv.setCross(this.projectCross(state));
        const cross = kv.cross!;
        let x = this.embedTokens(tf.tensor2d(Int32Array.from(targetIds.flat()), [rows, n], 'int32'), start, 'decoder');
        this.decoder.forEach((l, i) => {
          x = this.block(x, l.selfAttentionNorm, (h) => {
            const [q, k, v] = tf.split(linear(h, l.selfAttention.qkv), 3, 2);
            const qh = tf.mul(splitHeads(q!, H, hd), 1 / Math.sqrt(hd)) as tf.Tensor4D;
            return linear(mergeHeads(kv.self.attend(i, qh, splitHeads(k!, H, hd), splitHeads(v!, H, hd))), l.selfAttention.o) as tf.Tensor3D;
          });
          x = this.block(x, l.crossAttentionNorm!, (h) => {
            const qh = tf.mul(splitHeads(linear(h, l.crossAttention!.q), H, hd), 1 / Math.sqrt(hd)) as tf.Tensor4D;
            return linear(mergeHeads(groupedCrossAttention(qh, cross[i]!.k, cross[i]!.v, state.mask)), l.crossAttention!.o) as tf.Tensor3D;
          });
          x = this.block(x, l.ffnNorm, (h) => this.ffn(h, l));
        });
        if (this.decoderFinalNorm) x = norm(x, this.decoderFinalNorm) as tf.Tensor3D;
        const last = all ? x : tf.slice(x, [0, n - 1, 0], [-1, 1, -1]);
        return linear(last, this.output);
      });
      kv.self.advance(n);
      const data = (await logits.data()) as Float32Array;
      logits.dispose();
      return { data, batch: rows, positions: all ? n : 1, vocabSize: c.targetVocabSize };
    } finally {
      if (cache === null) kv.dispose();
    }
  }

  /** Cross-attention K/V of every decoder layer from the encoder output: [sources, H, S, hd] each. */
  private projectCross(state: TfEncoderState): CrossKV[] {
    const H = this.c.numHeads;
    const hd = this.c.dModel / H;
    return this.decoder.map((l) => {
      this.counters.crossAttentionProjections++;
      const [k, v] = tf.split(linear(state.output, l.crossAttention!.kv), 2, 2);
      return { k: splitHeads(k!, H, hd), v: splitHeads(v!, H, hd) };
    });
  }

  private state(s: EncoderState): TfEncoderState {
    if (!(s instanceof TfEncoderState)) throw new InvalidOptionError('encoderState', s, "the result of this model's encode()");
    if (s.disposed) throw new DisposedError('encoder state');
    return s;
  }

  private check(): void {
    if (this.isDisposed) throw new DisposedError('model');
  }

  dispose(): void {
    if (this.isDisposed) return;
    for (const t of this.owned) t.dispose();
    this.owned.clear();
    this.encoderPositions.dispose();
    this.decoderPositions.dispose();
    this.isDisposed = true;
  }
}

