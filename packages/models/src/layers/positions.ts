import * as tf from '@tensorflow/tfjs-core';

/**
 * Rotary position embedding tables: `cos`, `sin` `[maxPositions, headDim/2]`, frequency `theta^(-2i/headDim)`.
 * 'interleaved' rotates pairs (2i, 2i+1) (llama2.c, GGUF); 'half' rotates (i, i + headDim/2) (Hugging Face Llama).
 */
export interface Rotary {
  readonly cos: tf.Tensor2D; // [maxPositions, headDim/2]
  readonly sin: tf.Tensor2D; // [maxPositions, headDim/2]
  readonly style: 'interleaved' | 'half';
}

export function rotaryTables(maxPositions: number, headDim: number, theta: number, style: Rotary['style']): Rotary {
  const half = headDim / 2;
  const cos = new Float32Array(maxPositions * half);
  const sin = new Float32Array(maxPositions * half);
  for (let p = 0; p < maxPositions; p++) {
    for (let i = 0; i < half; i++) {
      // float32 frequency first, as llama2.c computes it
      const freq = Math.fround(1 / Math.pow(theta, Math.fround((2 * i) / headDim)));
      const angle = Math.fround(p * freq);
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  }
  return { cos: tf.tensor2d(cos, [maxPositions, half]), sin: tf.tensor2d(sin, [maxPositions, half]), style };
}

/**
 * Position tables sized to what has been used, not to the model's maximum: they start at 1024 rows and double on
 * demand (a header claiming a million positions allocates nothing until they are used).
 */
export class GrowingTable<T> {
  private rows = 0;
  private value: T | undefined;
  constructor(
    private readonly maxRows: number,
    private readonly build: (rows: number) => T,
    private readonly release: (v: T) => void,
  ) {}
  /** The table with at least `rows` rows. Call outside tf.tidy. */
  get(rows: number): T {
    if (!this.value || rows > this.rows) {
      let n = Math.max(this.rows * 2, 1024, rows);
      n = Math.min(n, this.maxRows);
      if (this.value) this.release(this.value);
      this.value = this.build(n);
      this.rows = n;
    }
    return this.value;
  }
  dispose(): void {
    if (this.value) this.release(this.value);
    this.value = undefined;
    this.rows = 0;
  }
}

/** x `[b, heads, n, hd]`, positions `[b, n]` → x rotated. */
export function applyRotary(x: tf.Tensor4D, positions: tf.Tensor2D, r: Rotary): tf.Tensor4D {
  const [b, h, n, hd] = x.shape;
  const half = hd / 2;
  const cos = tf.expandDims(tf.reshape(tf.gather(r.cos, tf.reshape(positions, [-1])), [b, n, half]), 1); // [b,1,n,half]
  const sin = tf.expandDims(tf.reshape(tf.gather(r.sin, tf.reshape(positions, [-1])), [b, n, half]), 1);
  if (r.style === 'interleaved') {
    const pairs = tf.reshape(x, [b, h, n, half, 2]);
    const [x0, x1] = tf.split(pairs, 2, 4).map((t) => tf.reshape(t, [b, h, n, half]));
    const o0 = tf.sub(tf.mul(x0!, cos), tf.mul(x1!, sin));
    const o1 = tf.add(tf.mul(x0!, sin), tf.mul(x1!, cos));
    return tf.reshape(tf.stack([o0, o1], 4), [b, h, n, hd]);
  }
  const [x0, x1] = tf.split(x, 2, 3);
  return tf.concat([tf.sub(tf.mul(x0!, cos), tf.mul(x1!, sin)), tf.add(tf.mul(x1!, cos), tf.mul(x0!, sin))], 3) as tf.Tensor4D;
}

/**
 * Sinusoidal position encodings `[maxPositions, dim]`, in the variants of the field:
 * - layout 'concat': `[sin(p·t_0..), cos(p·t_0..)]` (Marian, OpenNMT, fairseq, tensor2tensor); 'interleaved':
 *   sin at even, cos at odd dims (Vaswani et al.);
 * - denominator 'half': `t_i = 10000^(-i/(dim/2))` (Marian, Vaswani); 'half-minus-one': `t_i = 10000^(-i/(dim/2 − 1))`
 *   (OpenNMT, fairseq, tensor2tensor);
 * - `offset`: token k is encoded at position k + offset (OpenNMT counts from 1).
 */
export interface SinusoidalSpec {
  readonly kind: 'sinusoidal';
  readonly layout: 'concat' | 'interleaved';
  readonly denominator: 'half' | 'half-minus-one';
  /** Added to the token index (OpenNMT: 1). */
  readonly offset: number;
}

export interface LearnedSpec {
  readonly kind: 'learned';
  /** Added to the token index (BART: 2). */
  readonly offset: number;
}

export type PositionSpec = SinusoidalSpec | LearnedSpec;

export function sinusoidalTable(rows: number, dim: number, spec: SinusoidalSpec): Float32Array {
  const half = dim / 2;
  const out = new Float32Array(rows * dim);
  const denom = spec.denominator === 'half' ? half : half - 1;
  for (let p = 0; p < rows; p++) {
    for (let i = 0; i < half; i++) {
      const angle = p * Math.exp((-i * Math.log(10000)) / denom);
      if (spec.layout === 'concat') {
        out[p * dim + i] = Math.sin(angle);
        out[p * dim + half + i] = Math.cos(angle);
      } else {
        out[p * dim + 2 * i] = Math.sin(angle);
        out[p * dim + 2 * i + 1] = Math.cos(angle);
      }
    }
  }
  return out;
}
