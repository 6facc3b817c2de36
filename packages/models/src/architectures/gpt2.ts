import * as tf from '@tensorflow/tfjs-core';
import { InvalidOptionError, type ModelConfig, type SpecialTokens } from '@kvt/core';
import type { KVCache } from '@kvt/kernels';
import { activate, embed, linear, mergeHeads, norm, splitHeads, upload, type Embedding, type Linear, type Norm } from '../layers/ops.js';
import type { ParameterSet } from '../weights/host-tensor.js';
import { LinearWeights } from '../weights/linear-weights.js';
import type { BuildOptions } from './llama.js';
import { requirePlausiblePositions, requirePositiveFinite, requirePositiveIntegers, requireTokenIds } from './config-checks.js';
import { DecoderOnlyTransformer } from './decoder-only.js';

/** GPT-2 family: LayerNorm, learned positions, GELU (tanh approximation), fused QKV with biases, tied output. */
export interface Gpt2Config {
  readonly architecture: 'gpt2';
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  /** Default 4 × hiddenSize. */
  readonly intermediateSize?: number;
  readonly maxPositions: number;
  /** Default 1e-5. */
  readonly normEpsilon?: number;
  readonly specialTokens: SpecialTokens;
}

interface Gpt2Layer {
  readonly norm1: Norm;
  readonly qkv: Linear; // [hidden, 3·hidden] + bias
  readonly out: Linear; // [hidden, hidden] + bias
  readonly norm2: Norm;
  readonly fc: Linear; // [hidden, inter] + bias
  readonly proj: Linear; // [inter, hidden] + bias
}

/**
 * GPT-2. Parameters, kvt layout: `wte` [vocab, hidden], `wpe` [maxPositions, hidden]; per layer i: `layers.i.norm1.weight/.bias`,
 * `layers.i.qkv` [hidden, 3·hidden] (+ `.bias`), `layers.i.out` (+ `.bias`), `layers.i.norm2.*`, `layers.i.fc` [hidden, inter]
 * (+ `.bias`), `layers.i.proj` [inter, hidden] (+ `.bias`); `finalNorm.weight/.bias`. Output tied to `wte`.
 */
export class Gpt2Model extends DecoderOnlyTransformer {
  readonly config: ModelConfig & { readonly gpt2: Gpt2Config };
  protected readonly ownedTensors: tf.Tensor[];
  private readonly wte: Embedding;
  private readonly wpe: tf.Tensor2D; // [maxPositions, hidden]
  private readonly layers: Gpt2Layer[];
  private readonly finalNorm: Norm;

  private constructor(c: Gpt2Config, p: ParameterSet, options: BuildOptions = {}) {
    super();
    requirePositiveIntegers(c, ['vocabSize', 'hiddenSize', 'numLayers', 'numHeads', 'maxPositions'], 'gpt2');
    requirePlausiblePositions(c.maxPositions, 'gpt2');
    requirePositiveFinite(c.normEpsilon, 'gpt2.normEpsilon');
    requireTokenIds(c.specialTokens, c.vocabSize, 'gpt2');
    if (c.hiddenSize % c.numHeads !== 0)
      throw new InvalidOptionError('gpt2.numHeads', c.numHeads, `a divisor of hiddenSize (${c.hiddenSize})`);
    const d = c.hiddenSize;
    const F = c.intermediateSize ?? 4 * d;
    const eps = c.normEpsilon ?? 1e-5;
    this.config = {
      architecture: 'gpt2',
      numLayers: c.numLayers,
      numHeads: c.numHeads,
      numKvHeads: c.numHeads,
      headDim: d / c.numHeads,
      vocabSize: c.vocabSize,
      maxPositions: c.maxPositions,
      specialTokens: c.specialTokens,
      gpt2: c,
    };
    const owned: tf.Tensor[] = [];
    try {
      const up = <T extends tf.Tensor>(name: string, shape: number[]) => {
        const t = upload(p.take(name, shape)) as T;
        owned.push(t);
        return t;
      };
      const ln = (name: string): Norm => ({
        kind: 'layer',
        weight: up(`${name}.weight`, [d]),
        bias: up(`${name}.bias`, [d]),
        epsilon: eps,
      });
      const weights = new LinearWeights(p, options.weights, <T extends tf.Tensor>(t: T) => (owned.push(t), t));
      const lin = (name: string, i: number, o: number): Linear => ({ w: weights.linear([name], i, [o]), b: up(`${name}.bias`, [o]) });
      this.layers = Array.from({ length: c.numLayers }, (_, i) => ({
        norm1: ln(`layers.${i}.norm1`),
        qkv: lin(`layers.${i}.qkv`, d, 3 * d),
        out: lin(`layers.${i}.out`, d, d),
        norm2: ln(`layers.${i}.norm2`),
        fc: lin(`layers.${i}.fc`, d, F),
        proj: lin(`layers.${i}.proj`, F, d),
      }));
      this.finalNorm = ln('finalNorm');
      const wte = p.take('wte', [c.vocabSize, d]);
      const t = tf.tidy(() => tf.transpose(upload(wte))) as tf.Tensor2D; // [hidden, vocab], tied
      owned.push(t);
      this.wte = { transposed: t };
      this.wpe = up('wpe', [c.maxPositions, d]);
    } catch (e) {
      owned.forEach((t) => t.dispose());
      throw e;
    }
    this.ownedTensors = owned;
  }

  /**
   * @example
   * ```ts
   * const model = Gpt2Model.fromParameters(config, randomGpt2Parameters(config, 1));
   * ```
   */
  static fromParameters(config: Gpt2Config, params: ParameterSet, options: BuildOptions = {}): Gpt2Model {
    return new Gpt2Model(config, params, options);
  }

  protected hidden(ids: tf.Tensor2D, positions: tf.Tensor2D, cache: KVCache): tf.Tensor3D {
    const { numHeads: H, headDim: hd } = this.config;
    const d = H * hd;
    const [b, n] = ids.shape;
    const pos = tf.reshape(tf.gather(this.wpe, tf.reshape(positions, [-1])), [b, n, d]);
    let x: tf.Tensor3D = tf.add(embed(ids, this.wte), pos);
    this.layers.forEach((layer, l) => {
      const [q, k, v] = tf.split(linear(norm(x, layer.norm1), layer.qkv), 3, 2);
      const qh = tf.mul(splitHeads(q!, H, hd), 1 / Math.sqrt(hd)) as tf.Tensor4D;
      const attention = cache.attend(l, qh, splitHeads(k!, H, hd), splitHeads(v!, H, hd));
      x = tf.add(x, linear(mergeHeads(attention), layer.out));
      x = tf.add(x, linear(activate(linear(norm(x, layer.norm2), layer.fc), 'gelu_tanh'), layer.proj));
    });
    return norm(x, this.finalNorm) as tf.Tensor3D;
  }

  protected project(h: tf.Tensor3D): tf.Tensor3D {
    return linear(h, { w: this.wte.transposed! }) as tf.Tensor3D;
  }
}
