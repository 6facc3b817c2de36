import type * as tf from '@tensorflow/tfjs-core';
import { KvtGatherRows, KvtLinear, KvtRmsNorm, blockValues, rowPlacement, type BlockFormat, type GatherRowsAttrs, type LinearAttrs, type RowGroup } from '@kvt/kernels';
import { dequantizeQ4K, halfToFloat } from '@kvt/models';

/** What tfjs-cpu's backend object exposes that these kernels use. */
interface CpuBackendInternals {
  data: { get(dataId: object): { values: Float32Array | Int32Array } };
  makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): tf.TensorInfo;
}
interface Args {
  inputs: tf.NamedTensorInfoMap;
  backend: tf.KernelBackend;
  attrs?: tf.NamedAttrMap;
}

const values = (b: CpuBackendInternals, t: tf.TensorInfo) => b.data.get(t.dataId).values as Float32Array;
/** The raw bytes of a weight held as rows (an int32 tensor). */
const bytesOf = (b: CpuBackendInternals, t: tf.TensorInfo) => {
  const v = b.data.get(t.dataId).values;
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
};

/** The values of a block at `at` (32; 256 for q4_k, 16 for float32 rows), as float32 into `out`. */
function block(w: Uint8Array, at: number, format: BlockFormat, out: Float32Array): void {
  if (format === 'q4_k') {
    dequantizeQ4K(w, at, out);
    return;
  }
  if (format === 'fp32') {
    out.set(new Float32Array(w.buffer.slice(w.byteOffset + at, w.byteOffset + at + 64)));
    return;
  }
  if (format === 'fp16') {
    for (let k = 0; k < 32; k++) out[k] = halfToFloat(w[at + 2 * k]! | (w[at + 2 * k + 1]! << 8));
    return;
  }
  const d = halfToFloat(w[at]! | (w[at + 1]! << 8));
  if (format === 'q8_0') for (let k = 0; k < 32; k++) out[k] = d * ((w[at + 2 + k]! << 24) >> 24);
  else
    for (let k = 0; k < 16; k++) {
      const byte = w[at + 2 + k]!;
      out[k] = d * ((byte & 15) - 8);
      out[k + 16] = d * ((byte >> 4) - 8);
    }
}

/**
 * y[m, out] = x[m, in] · W for rows W [out, in] (quantized, fp16 or float32) laid out by `rowGroup`: each block
 * dequantized once, then dotted with every input row (float32 throughout: the exact dequantize-then-multiply).
 */
export function linearBlocks(
  x: Float32Array,
  w: Uint8Array,
  y: Float32Array,
  m: number,
  inDim: number,
  out: number,
  format: BlockFormat,
  rowGroup: RowGroup,
): void {
  const size = blockValues(format);
  const nb = inDim / size;
  const vals = new Float32Array(size);
  y.fill(0);
  for (let o = 0; o < out; o++) {
    const { start, step } = rowPlacement(format, inDim, out, rowGroup, o);
    for (let b = 0; b < nb; b++) {
      block(w, start + b * step, format, vals);
      for (let t = 0; t < m; t++) {
        const xo = t * inDim + b * size;
        let s = 0;
        for (let k = 0; k < size; k++) s += vals[k]! * x[xo + k]!;
        y[t * out + o]! += s;
      }
    }
  }
}

/**
 * y[m, out] = x[m, in] · w[in, out] (float32 columns), four weight rows per sweep of y (one pass over w per row of x:
 * a decode step streams the weights once, in order).
 */
export function linearColumns(x: Float32Array, w: Float32Array, y: Float32Array, m: number, inDim: number, out: number): void {
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

function linear({ inputs, backend, attrs }: Args): tf.TensorInfo {
  const b = backend as unknown as CpuBackendInternals;
  const { x, w } = inputs as Record<string, tf.TensorInfo>;
  const { layout, format, inDim, outDim: out, rowGroup } = attrs as unknown as LinearAttrs;
  const m = x!.shape.reduce((p, q) => p * q, 1) / inDim;
  const y = new Float32Array(m * out);
  if (layout === 'columns') linearColumns(values(b, x!), values(b, w!), y, m, inDim, out);
  else linearBlocks(values(b, x!), bytesOf(b, w!), y, m, inDim, out, format, rowGroup);
  return b.makeTensorInfo([m, out], 'float32', y);
}

/** Rows ids [n] of a table held as rows [rows, dim] → float32 [n, dim]. */
function gatherRows({ inputs, backend, attrs }: Args): tf.TensorInfo {
  const b = backend as unknown as CpuBackendInternals;
  const { table, ids } = inputs as Record<string, tf.TensorInfo>;
  const { format, dim, rows, rowGroup } = attrs as unknown as GatherRowsAttrs;
  const w = bytesOf(b, table!);
  const idv = b.data.get(ids!.dataId).values;
  const size = blockValues(format);
  const nb = dim / size;
  const out = new Float32Array(idv.length * dim);
  const vals = new Float32Array(size);
  idv.forEach((id, t) => {
    const { start, step } = rowPlacement(format, dim, rows, rowGroup, id);
    for (let k = 0; k < nb; k++) {
      block(w, start + k * step, format, vals);
      out.set(vals, t * dim + k * size);
    }
  });
  return b.makeTensorInfo([idv.length, dim], 'float32', out);
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
  { kernelName: KvtGatherRows, backendName: 'cpu', kernelFunc: gatherRows as unknown as tf.KernelFunc },
  { kernelName: KvtRmsNorm, backendName: 'cpu', kernelFunc: rmsNorm as unknown as tf.KernelFunc },
];
