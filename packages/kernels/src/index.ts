/**
 * @kvt/kernels: the contract between kvt's architectures and its backend packages. The KV cache interface every
 * backend implements, kvt's own kernels by name with typed inputs (each backend registers those it has with tfjs's
 * `registerKernel`), and the {@link Backend} description a backend package registers.
 *
 * @example
 * ```ts
 * import { createBackendKVCache } from '@kvt/kernels';
 * import '@kvt/backend-wasm';
 * const cache = createBackendKVCache({ numLayers: 2, batchSize: 1, numKvHeads: 4, headDim: 8, maxLength: 512 });
 * cache.dispose();
 * ```
 *
 * @packageDocumentation
 */
export type { KVCache, KVCacheFactory, KVCacheOptions } from './kv-cache.js';
export { KVCacheContainer, cacheChecks, kvBytesPerPosition, type KVStorage, type WriteContext } from './kv-cache-container.js';
export { CACHE_STATE_VERSION, decodeCacheState, encodeCacheState, type CacheStateHeader } from './cache-state.js';
export { activateTfBackend, createBackendKVCache, float32Layout, registerBackend, registeredBackend, supportsWeightFormat, type Backend } from './backend.js';
export { KvtCacheAttend, KvtGatherRows, KvtLinear, KvtLlamaBlock, KvtRmsNorm, type KvtKernelName } from './kernel-names.js';
export {
  blockWeight,
  cacheTakesKernel,
  hasKernel,
  runCacheAttend,
  runGatherRows,
  runLinear,
  runLlamaBlock,
  runRmsNorm,
  tensorFromBytes,
  weightCode,
  type BlockWeight,
  type CacheAttendAttrs,
  type GatherRowsAttrs,
  type LinearAttrs,
  type LlamaBlockAttrs,
  type LlamaBlockInputs,
} from './decode-kernels.js';
export {
  BLOCK,
  FLOAT32_COLUMNS_CODE,
  LINEAR_ROW_GROUP,
  QUANTIZED_FORMATS,
  WEIGHT_FORMATS,
  blockBytes,
  blockValues,
  bytesPerRow,
  formatCode,
  groupRows,
  rowPlacement,
  type BlockFormat,
  type QuantizedFormat,
  type RowGroup,
  type WeightFormat,
} from './weight-formats.js';
