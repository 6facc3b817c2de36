import * as tf from '@tensorflow/tfjs-core';
import { kvtKernelsSharedWasm, kvtKernelsWasm } from './kvt-kernels-wasm.js';

/** The exports of kvt-kernels.c; every pointer is a byte offset into tfjs-wasm's heap. */
export interface KernelExports {
  linear(x: number, w: number, y: number, m: number, inDim: number, outDim: number, accumulate: number): void;
  rms_norm(x: number, w: number, y: number, m: number, d: number, eps: number): void;
  /** tabs [b, nb]: each row's blocks; layout: a KvLayout (kv-cache.ts `tables`); isKey: 1 for K (int8: less the key offsets). */
  cache_write(
    src: number, sr: number, sg: number, st: number, tabs: number, b: number, n: number, kvHeads: number, hd: number, nb: number, at: number,
    layout: number, isKey: number,
  ): void;
  /** An int8 cache's fp16 block → int8: the first `filled` positions of each of `regions` head regions. */
  kv_seal(src: number, dst: number, regions: number, filled: number, hd: number, shift: number, stride: number, openStride: number): void;
  attend(
    q: number, qr: number, qh: number, qt: number, kTabs: number, vTabs: number, pads: number,
    out: number, or: number, oh: number, ot: number,
    b: number, n: number, heads: number, kvHeads: number, hd: number, nb: number, len: number, scores: number, layout: number,
  ): void;
  llama_block(
    x: number, attnNorm: number, wqkv: number, wo: number, ffnNorm: number, wgu: number, wdown: number, cos: number, sin: number,
    kTabs: number, vTabs: number, pads: number,
    b: number, n: number, len: number, nb: number, d: number, heads: number, kvHeads: number, hd: number, F: number, eps: number,
    ropeHalf: number, fmts: number, scratch: number, layout: number,
  ): void;
  /** y (+)= x · W for a weight of format `fmt` (kvt-kernels.c FMT_*); scratch: the quantized input. */
  linear_q(fmt: number, x: number, w: number, y: number, m: number, inDim: number, outDim: number, accumulate: number, scratch: number): void;
  dequantize_rows(fmt: number, table: number, ids: number, n: number, rows: number, dim: number, out: number): void;
}

/** What tfjs-wasm's backend object exposes that the kernels use. */
interface WasmBackendInternals {
  wasm: { asm: { memory: WebAssembly.Memory }; _malloc(bytes: number): number; _free(ptr: number): void; HEAPU8: Uint8Array };
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  disposeData(dataId: object): boolean;
  makeOutput(shape: number[], dtype: 'float32' | 'int32', memoryOffset?: number): tf.TensorInfo;
}

const compiled = new Map<boolean, WebAssembly.Module>();

/**
 * kvt's kernels instantiated on one tfjs-wasm backend's memory, with that heap's allocator: the KV cache, the scratch
 * and the kernels' outputs all live in tfjs's heap, next to the tensors they read.
 */
export class WasmHeap {
  readonly kernels: KernelExports;
  private readonly backend: WasmBackendInternals;
  private scratchAt = 0;
  private scratchBytes = 0;

  constructor(backend: tf.KernelBackend) {
    this.backend = backend as unknown as WasmBackendInternals;
    const memory = this.backend.wasm.asm.memory;
    const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
    let module = compiled.get(shared);
    if (!module) {
      module = new WebAssembly.Module(base64Bytes(shared ? kvtKernelsSharedWasm : kvtKernelsWasm) as BufferSource);
      compiled.set(shared, module);
    }
    this.kernels = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as KernelExports;
  }

  /** Byte offset of a tensor's data in the heap. */
  offset(t: tf.TensorInfo): number {
    const entry = this.backend.dataIdMap.get(t.dataId);
    if (!entry) throw new Error('kvt wasm kernels: a tensor is not on the wasm backend');
    return entry.memoryOffset;
  }

  /** A new float32 tensor of `shape` in the heap (uninitialized), for a kernel's output. */
  output(shape: number[]): tf.TensorInfo {
    return this.backend.makeOutput(shape, 'float32');
  }

  /** An int32 tensor of `bytes / 4` values written in the heap by `fill` (no copy through a JavaScript array). */
  tensorFromBytes(bytes: number, fill: (out: Uint8Array) => void): tf.Tensor1D {
    const info = this.backend.makeOutput([bytes / 4], 'int32');
    const at = this.offset(info);
    try {
      fill(this.u8.subarray(at, at + bytes));
    } catch (e) {
      this.backend.disposeData(info.dataId); // not a tensor yet: freed here, or never
      throw e;
    }
    return tf.engine().makeTensorFromTensorInfo(info) as tf.Tensor1D;
  }

  /**
   * Bytes of scratch a linear of rows needs for `m` input rows of `inDim`: a quantized one's int16 input, its block
   * scales and block sums (float32 and int32 per 32 values), or an fp16 one's four weight rows widened to float32.
   */
  static quantizedInputBytes(m: number, inDim: number): number {
    return Math.ceil(Math.max(m * inDim * 2 + (m * inDim) / 4, 16 * inDim) / 16) * 16 + 16;
  }

  /** `bytes` from the heap's allocator, 16-byte aligned. */
  malloc(bytes: number): number {
    const at = this.backend.wasm._malloc(bytes) >>> 0;
    if (at === 0) throw new RangeError(`The wasm heap could not allocate ${bytes} bytes.`);
    return at;
  }

  free(at: number): void {
    this.backend.wasm._free(at);
  }

  /** Views of the heap (made anew on every call: the heap may have grown since). */
  get f32(): Float32Array {
    return new Float32Array(this.backend.wasm.HEAPU8.buffer);
  }
  get i32(): Int32Array {
    return new Int32Array(this.backend.wasm.HEAPU8.buffer);
  }
  get u8(): Uint8Array {
    return this.backend.wasm.HEAPU8;
  }

  /** A scratch region of at least `bytes`, reused by every kernel call (they run one at a time). */
  scratch(bytes: number): number {
    if (bytes > this.scratchBytes) {
      if (this.scratchAt) this.free(this.scratchAt);
      this.scratchBytes = Math.max(bytes, 2 * this.scratchBytes);
      this.scratchAt = this.malloc(this.scratchBytes);
    }
    return this.scratchAt;
  }
}

function base64Bytes(s: string): Uint8Array {
  if (typeof atob === 'function') return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  return new Uint8Array(Buffer.from(s, 'base64'));
}

const heaps = new WeakMap<tf.KernelBackend, WasmHeap>();

/** The kernels of `backend` (instantiated on first use). */
export function heapOf(backend: tf.KernelBackend): WasmHeap {
  let heap = heaps.get(backend);
  if (!heap) {
    heap = new WasmHeap(backend);
    heaps.set(backend, heap);
  }
  return heap;
}
