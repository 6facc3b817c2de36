import type * as tf from '@tensorflow/tfjs-core';
import {
  KVCacheContainer,
  KvtCacheAttend,
  KvtGatherRows,
  KvtLinear,
  KvtLlamaBlock,
  KvtRmsNorm,
  FLOAT32_COLUMNS_CODE,
  formatCode,
  type CacheAttendAttrs,
  type GatherRowsAttrs,
  type LinearAttrs,
  type LlamaBlockAttrs,
} from '@kvt/kernels';
import { WasmHeap, heapOf } from './heap.js';
import { WasmStorage } from './kv-cache.js';

type Inputs = Record<string, tf.TensorInfo>;
interface Args {
  inputs: tf.NamedTensorInfoMap;
  backend: tf.KernelBackend;
  attrs?: tf.NamedAttrMap;
}

function wasmStorage(storage: unknown): WasmStorage {
  if (!(storage instanceof WasmStorage)) throw new Error('kvt wasm kernels: the cache storage is not the wasm backend\'s');
  return storage;
}

/** x [m, in] · W → [m, out]: W float32 columns [in, out], or rows [out, in] (attrs.format, attrs.rowGroup). */
function linear({ inputs, backend, attrs }: Args): tf.TensorInfo {
  const { x, w } = inputs as Inputs;
  const { layout, format, inDim, outDim, rowGroup } = attrs as unknown as LinearAttrs;
  const heap = heapOf(backend);
  const m = x!.shape.reduce((a, b) => a * b, 1) / inDim;
  const out = heap.output([m, outDim]);
  if (layout === 'columns') heap.kernels.linear(heap.offset(x!), heap.offset(w!), heap.offset(out), m, inDim, outDim, 0);
  else {
    const scratch = heap.scratch(WasmHeap.quantizedInputBytes(m, inDim));
    heap.kernels.linear_q(formatCode(format, rowGroup), heap.offset(x!), heap.offset(w!), heap.offset(out), m, inDim, outDim, 0, scratch);
  }
  return out;
}

/** Rows ids [n] of a table held as rows [rows, dim] (attrs.format, attrs.rowGroup) → float32 [n, dim]. */
function gatherRows({ inputs, backend, attrs }: Args): tf.TensorInfo {
  const { table, ids } = inputs as Inputs;
  const { format, dim, rows, rowGroup } = attrs as unknown as GatherRowsAttrs;
  const heap = heapOf(backend);
  const n = ids!.shape[0]!;
  const out = heap.output([n, dim]);
  heap.kernels.dequantize_rows(formatCode(format, rowGroup), heap.offset(table!), heap.offset(ids!), n, rows, dim, heap.offset(out));
  return out;
}

/** x [m, d] → rmsnorm(x) · weight. */
function rmsNorm({ inputs, backend, attrs }: Args): tf.TensorInfo {
  const { x, weight } = inputs as Inputs;
  const heap = heapOf(backend);
  const d = weight!.shape[0]!;
  const m = x!.shape.reduce((a, b) => a * b, 1) / d;
  const out = heap.output([...x!.shape]);
  heap.kernels.rms_norm(heap.offset(x!), heap.offset(weight!), heap.offset(out), m, d, (attrs as { epsilon: number }).epsilon);
  return out;
}

/** One Llama block over the new positions; see kvt-kernels.c `llama_block`. */
function llamaBlock({ inputs, backend, attrs }: Args): tf.TensorInfo {
  const i = inputs as Inputs;
  const a = attrs as unknown as LlamaBlockAttrs;
  if (!(a.cache instanceof KVCacheContainer)) throw new Error('kvt wasm kernels: the cache is not a KVCacheContainer');
  const cache = a.cache;
  const storage = wasmStorage(cache.storage);
  const heap = heapOf(backend);
  const [m, d] = i.x!.shape as [number, number];
  const n = a.newPositions;
  const b = m / n;
  const { numHeads: H, numKvHeads: KV, headDim: hd, intermediateSize: F } = a;
  const at = cache.prepareWrite(a.layer, b, n);
  const len = at.start;
  const floats = m * d + m * (H + 2 * KV) * hd + m * H * hd + m * 3 * F + ((len + n + 3) & ~3); // + scores [len + n]
  const quantized = WasmHeap.quantizedInputBytes(m, Math.max(d, H * hd, F)); // the quantized input of a linear
  const t = storage.tables(a.layer, at, n, floats * 4 + quantized + 16); // + the four weight codes
  const fmts = t.free + floats * 4 + quantized;
  (a.weightCodes ?? Array<number>(4).fill(FLOAT32_COLUMNS_CODE)).forEach((code, k) => (heap.i32[fmts / 4 + k] = code));
  const out = heap.output([m, d]);
  const xAt = heap.offset(i.x!);
  const outAt = heap.offset(out);
  heap.u8.copyWithin(outAt, xAt, xAt + m * d * 4);
  heap.kernels.llama_block(
    outAt, heap.offset(i.attentionNorm!), heap.offset(i.qkv!), heap.offset(i.o!), heap.offset(i.ffnNorm!),
    heap.offset(i.gateUp!), heap.offset(i.down!), heap.offset(i.cos!), heap.offset(i.sin!),
    t.kTabs, t.vTabs, t.pads, b, n, len, t.blocksPerRow, d, H, KV, hd, F, a.epsilon, a.ropeStyle === 'half' ? 1 : 0, fmts, t.free,
    t.layout,
  );
  return out;
}

/** Appends k, v [b, kvHeads, n, hd] at the cache's length and attends q [b, heads, n, hd] over the valid positions. */
function cacheAttend({ inputs, backend, attrs }: Args): tf.TensorInfo {
  const { q, k, v } = inputs as Inputs;
  const { storage: s, layer, at } = attrs as unknown as CacheAttendAttrs;
  const storage = wasmStorage(s);
  const heap = heapOf(backend);
  const [b, H, n, hd] = q!.shape as [number, number, number, number];
  const KV = k!.shape[1]!;
  const len = at.start;
  const t = storage.tables(layer, at, n, (len + n) * 4); // scores [len + n]
  const nb = t.blocksPerRow;
  storage.writeRows(t, k!, v!, len);
  const out = heap.output([b, H, n, hd]);
  const o = heap.offset(out);
  heap.kernels.attend(heap.offset(q!), H * n * hd, n * hd, hd, t.kTabs, t.vTabs, t.pads, o, H * n * hd, n * hd, hd, b, n, H, KV, hd, nb, len, t.free, t.layout);
  return out;
}

/** The wasm backend's kvt kernels, for tfjs's `registerKernel`. */
export const wasmKernelConfigs: tf.KernelConfig[] = [
  { kernelName: KvtLinear, backendName: 'wasm', kernelFunc: linear as unknown as tf.KernelFunc },
  { kernelName: KvtGatherRows, backendName: 'wasm', kernelFunc: gatherRows as unknown as tf.KernelFunc },
  { kernelName: KvtRmsNorm, backendName: 'wasm', kernelFunc: rmsNorm as unknown as tf.KernelFunc },
  { kernelName: KvtLlamaBlock, backendName: 'wasm', kernelFunc: llamaBlock as unknown as tf.KernelFunc },
  { kernelName: KvtCacheAttend, backendName: 'wasm', kernelFunc: cacheAttend as unknown as tf.KernelFunc },
];
