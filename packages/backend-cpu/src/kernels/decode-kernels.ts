import type * as tf from '@tensorflow/tfjs-core';
import { KvtLinear, KvtRmsNorm } from '@kvt/kernels';

/** What tfjs-cpu's backend object exposes that these kernels use. */
interface CpuBackendInternals {
  data: { get(dataId: object): { values: Float32Array } };
  makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): tf.TensorInfo;
}
interface Args {
  inputs: tf.NamedTensorInfoMap;
  backend: tf.KernelBackend;
  attrs?: tf.NamedAttrMap;
}

const values = (b: CpuBackendInternals, t: tf.TensorInfo) => b.data.get(t.dataId).values;

/**
 * y[m, out] = x[m, in] · w[in, out], four weight rows per sweep of y (one pass over w per row of x: a decode step
 * streams the weights once, in order).
 */
export function linearRows(x: Float32Array, w: Float32Array, y: Float32Array, m: number, inDim: number, out: number): void {
  y.fill(0);
  for (let t = 0; t < m; t++) {
    const yo = t * out;
    const xo = t * inDim;
    let i = 0;
    for (; i + 4 <= inDim; i += 4) {
      const x0 = x[xo + i]!, x1 = x[xo + i + 1]!, x2 = x[xo + i + 2]!, x3 = x[xo + i + 3]!;
      const r0 = i * out, r1 = r0 + out, r2 = r1 + out, r3 = r2 + out;
      for (let j = 0; j < out; j++) y[yo + j]! += x0 * w[r0 + j]! + x1 * w[r1 + j]! + x2 * w[r2 + j]! + x3 * w[r3 + j]!;
    }
    for (; i < inDim; i++) {
      const xi = x[xo + i]!;
      const r = i * out;
      for (let j = 0; j < out; j++) y[yo + j]! += xi * w[r + j]!;
    }
  }
}

function linear({ inputs, backend }: Args): tf.TensorInfo {
  const b = backend as unknown as CpuBackendInternals;
  const { x, w } = inputs as Record<string, tf.TensorInfo>;
  const [inDim, out] = w!.shape as [number, number];
  const m = x!.shape.reduce((p, q) => p * q, 1) / inDim;
  const y = new Float32Array(m * out);
  linearRows(values(b, x!), values(b, w!), y, m, inDim, out);
  return b.makeTensorInfo([m, out], 'float32', y);
}

function rmsNorm({ inputs, backend, attrs }: Args): tf.TensorInfo {
  const b = backend as unknown as CpuBackendInternals;
  const { x, weight } = inputs as Record<string, tf.TensorInfo>;
  const eps = (attrs as { epsilon: number }).epsilon;
  const xv = values(b, x!);
  const wv = values(b, weight!);
  const d = wv.length;
  const y = new Float32Array(xv.length);
  for (let o = 0; o < xv.length; o += d) {
    let ss = 0;
    for (let i = 0; i < d; i++) ss += xv[o + i]! * xv[o + i]!;
    const r = 1 / Math.sqrt(ss / d + eps);
    for (let i = 0; i < d; i++) y[o + i] = xv[o + i]! * r * wv[i]!;
  }
  return b.makeTensorInfo([...x!.shape], 'float32', y);
}

/** The cpu backend's kvt kernels (plain JavaScript), for tfjs's `registerKernel`. */
export const cpuKernelConfigs: tf.KernelConfig[] = [
  { kernelName: KvtLinear, backendName: 'cpu', kernelFunc: linear as unknown as tf.KernelFunc },
  { kernelName: KvtRmsNorm, backendName: 'cpu', kernelFunc: rmsNorm as unknown as tf.KernelFunc },
];
