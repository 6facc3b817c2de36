import * as tf from '@tensorflow/tfjs-core';
import { UnsupportedError } from '@kvt/core';
import { KvtRmsNorm, hasKernel, runGatherRows, runLinear, runRmsNorm, type BlockWeight } from '@kvt/kernels';
import type { HostTensor } from '../weights/host-tensor.js';
import type { LinearWeight } from '../weights/linear-weights.js';

/**
 * A linear layer: `y = x · W + b`. W is float32 `[in, out]` (transposed once at load: no transposeB per step), or
 * quantized rows `[out, in]` that the backend's `KvtLinear` multiplies as stored.
 */
export interface Linear {
  readonly w: LinearWeight;
  readonly b?: tf.Tensor1D; // [out]
}

/** A normalization layer: RMSNorm has no bias; LayerNorm has both. */
export interface Norm {
  readonly kind: 'rms' | 'layer';
  readonly weight: tf.Tensor1D; // [dim]
  readonly bias?: tf.Tensor1D; // [dim]
  readonly epsilon: number;
}

export type Activation = 'relu' | 'gelu' | 'gelu_tanh' | 'silu';

export function upload(t: HostTensor): tf.Tensor {
  return tf.tensor(t.data, [...t.shape], 'float32');
}

/** x `[..., in]` · W + b → `[..., out]`. */
export function linear(x: tf.Tensor, l: Linear): tf.Tensor {
  const float = l.w instanceof tf.Tensor;
  const inDim = float ? (l.w as tf.Tensor2D).shape[0] : (l.w as BlockWeight).inDim;
  const outDim = float ? (l.w as tf.Tensor2D).shape[1] : (l.w as BlockWeight).outDim;
  const lead = x.shape.slice(0, -1);
  const x2 = tf.reshape(x, [-1, inDim]) as tf.Tensor2D;
  // the backend's own kernel where it has one
  let y: tf.Tensor | null = runLinear(x2, l.w) ?? (float ? tf.matMul(x2, l.w as tf.Tensor2D) : null);
  if (!y) throw new UnsupportedError(`The ${tf.getBackend()} backend cannot multiply ${(l.w as BlockWeight).format} weights; load the model with weights: 'fp32'.`);
  if (l.b) y = tf.add(y, l.b);
  return tf.reshape(y, [...lead, outDim]);
}

export function norm(x: tf.Tensor, n: Norm): tf.Tensor {
  if (n.kind === 'rms') {
    if (hasKernel(KvtRmsNorm)) {
      const d = x.shape[x.shape.length - 1]!;
      return tf.reshape(runRmsNorm(tf.reshape(x, [-1, d]) as tf.Tensor2D, n.weight, n.epsilon)!, x.shape);
    }
    const ms = tf.mean(tf.square(x), -1, true);
    return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, n.epsilon))), n.weight);
  }
  const { mean, variance } = tf.moments(x, -1, true);
  const y = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, n.epsilon)));
  return n.bias ? tf.add(tf.mul(y, n.weight), n.bias) : tf.mul(y, n.weight);
}

export function activate(x: tf.Tensor, a: Activation): tf.Tensor {
  switch (a) {
    case 'relu':
      return tf.relu(x);
    case 'silu':
      return tf.mul(x, tf.sigmoid(x));
    case 'gelu':
      return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));
    case 'gelu_tanh': {
      const inner = tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI));
      return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(inner)));
    }
  }
}

/** `[b, n, heads·hd]` → `[b, heads, n, hd]`. */
export function splitHeads(x: tf.Tensor, heads: number, headDim: number): tf.Tensor4D {
  const [b, n] = x.shape as [number, number, number];
  return tf.transpose(tf.reshape(x, [b, n, heads, headDim]), [0, 2, 1, 3]);
}

/** `[b, heads, n, hd]` → `[b, n, heads·hd]`. */
export function mergeHeads(x: tf.Tensor4D): tf.Tensor3D {
  const [b, h, n, d] = x.shape;
  return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [b, n, h * d]);
}

/**
 * A token embedding. Stored either as a table `[vocab, dim]`, or, when it is tied to the output projection, only as
 * that projection `[dim, vocab]` (looked up by gathering columns), so tied weights are held once.
 */
export interface Embedding {
  readonly table?: tf.Tensor2D; // [vocab, dim]
  readonly transposed?: tf.Tensor2D; // [dim, vocab]
  /** Quantized rows `[vocab, dim]` (also the tied output projection's weight). */
  readonly rows?: BlockWeight;
}

/** ids `[b, n]` → `[b, n, dim]`. */
export function embed(ids: tf.Tensor2D, e: Embedding): tf.Tensor3D {
  const [b, n] = ids.shape;
  const flat = tf.reshape(ids, [-1]) as tf.Tensor1D;
  if (e.rows) return tf.reshape(runGatherRows(e.rows, flat), [b, n, e.rows.inDim]);
  if (e.table) return tf.reshape(tf.gather(e.table, flat), [b, n, e.table.shape[1]]);
  const t = e.transposed!;
  return tf.reshape(tf.transpose(tf.gather(t, flat, 1)), [b, n, t.shape[0]]);
}
