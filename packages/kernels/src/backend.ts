import * as tf from '@tensorflow/tfjs-core';
import { UnsupportedError } from '@kvt/core';
import type { KVDtype } from '@kvt/core';
import type { KVCache, KVCacheOptions } from './kv-cache.js';
import type { WeightFormat } from './weight-formats.js';

/**
 * What a backend package brings: the tfjs backend it runs on, how to make it active, its KV cache, and counters a
 * benchmark can read (compiled shader programs, bytes written per step, …).
 */
export interface Backend<ActivateOptions = Record<string, never>> {
  /** The tfjs backend name ('cpu', 'wasm', 'webgl', 'webgpu'). */
  readonly name: string;
  /** Weight formats its `KvtLinear` multiplies as stored (float32 always; quantized ones where listed). */
  readonly weightFormats?: readonly WeightFormat[];
  /**
   * How its `KvtLinear` multiplies float32 weights fastest: as kvt's columns `[in, out]` (the default; also what
   * tf.matMul takes) or as rows `[out, in]` in row groups of four (one sequential stream per decode step).
   */
  readonly float32Layout?: 'columns' | 'rows';
  /** How its KV cache can store K/V (default: 'fp32' only). */
  readonly kvDtypes?: readonly KVDtype[];
  /** Makes this backend the active tfjs backend (models loaded afterwards live there). */
  activate(options?: ActivateOptions): Promise<void>;
  /** The backend's own KV cache: storage where the backend computes, written in place. */
  createKVCache(options: KVCacheOptions): KVCache;
  /**
   * An int32 tensor of `bytes / 4` values whose bytes `fill` writes where the backend keeps them (no staging array in
   * JavaScript): how large weights are uploaded. Without it, a JavaScript array is filled and handed to tfjs.
   */
  tensorFromBytes?(bytes: number, fill: (out: Uint8Array) => void): tf.Tensor1D;
  /** Counters since the backend was activated, for benchmarks (names are the backend's own). */
  counters?(): Readonly<Record<string, number>>;
}

const backends = new Map<string, Backend<never>>();

/**
 * Registers a backend package's description; its registering module calls this once on import.
 *
 * @example
 * ```ts
 * registerBackend({ name: 'cpu', activate: async () => void (await tf.setBackend('cpu')), createKVCache: (o) => new ConcatKVCache(o) });
 * ```
 */
export function registerBackend(backend: Backend<never>): void {
  backends.set(backend.name, backend);
}

/** The registered backend package for a tfjs backend name (default: the active one), if any. */
export function registeredBackend(name: string = tf.getBackend()): Backend<never> | undefined {
  return backends.get(name);
}

/**
 * The active backend's own KV cache. Throws a typed error when no backend package is registered for the active tfjs
 * backend: kvt never silently gives a slower cache than the one asked for.
 */
export function createBackendKVCache(options: KVCacheOptions): KVCache {
  const name = tf.getBackend();
  const backend = backends.get(name);
  if (!backend)
    throw new UnsupportedError(
      `No kvt backend package is registered for the active tfjs backend '${name}', so there is no backend KV cache. ` +
        `Import one ('@kvt/backend-cpu', '@kvt/backend-wasm', '@kvt/backend-webgl' or '@kvt/backend-webgpu'), or ask for cache: 'concat'.`,
    );
  const dtype = options.kvDtype ?? 'fp32';
  const dtypes = backend.kvDtypes ?? ['fp32'];
  if (!dtypes.includes(dtype))
    throw new UnsupportedError(`The ${name} backend's KV cache stores K/V as ${dtypes.join(' or ')}, not ${dtype}; ask for kvDtype: ${dtypes.map((d) => `'${d}'`).join(' or ')}, or use @kvt/backend-wasm.`);
  return backend.createKVCache(options);
}

/**
 * Makes the tfjs backend `name` active and waits until it is ready; what each backend package's `activate` does.
 *
 * @example
 * ```ts
 * await activateTfBackend('wasm');
 * ```
 */
export async function activateTfBackend(name: string): Promise<void> {
  if (!(await tf.setBackend(name))) throw new UnsupportedError(`The ${name} backend failed to initialize.`);
  await tf.ready();
}

/**
 * Whether the active backend multiplies weights of `format` as stored; where it does not, a model dequantizes them
 * to float32 when it loads (and says so).
 *
 * @example
 * ```ts
 * supportsWeightFormat('q8_0'); // true on wasm and cpu
 * ```
 */
export function supportsWeightFormat(format: WeightFormat, name: string = tf.getBackend()): boolean {
  return format === 'fp32' || (backends.get(name)?.weightFormats?.includes(format) ?? false);
}

/**
 * How a model holds float32 linear weights on the backend (default: the active one): rows where its package says
 * its `KvtLinear` multiplies them faster, else kvt's columns `[in, out]`.
 *
 * @example
 * ```ts
 * float32Layout('wasm'); // 'rows' once @kvt/backend-wasm is imported
 * ```
 */
export function float32Layout(name: string = tf.getBackend()): 'columns' | 'rows' {
  return backends.get(name)?.float32Layout ?? 'columns';
}
