/**
 * @kvt/models: Transformer architectures on TensorFlow.js ops (Llama, GPT-2, encoder-decoder), the KV cache
 * contract that backends implement, and the reference concat cache.
 *
 * @packageDocumentation
 */
export { LlamaModel, validateLlamaConfig, type BuildOptions, type LlamaConfig } from './architectures/llama.js';
export { Gpt2Model, type Gpt2Config } from './architectures/gpt2.js';
export {
  EncoderDecoderTransformer,
  TfEncoderState,
  groupedCrossAttention,
  type EncoderDecoderConfig,
} from './architectures/encoder-decoder.js';
export { DecoderOnlyTransformer } from './architectures/decoder-only.js';
export type { KVCache, KVCacheFactory, KVCacheOptions } from '@kvt/kernels';
export { ConcatKVCache, ConcatStorage, groupedAttention } from './kv-cache/concat-cache.js';
export { bucketFor, cloneStore, disposeStores, gatherStoreRows, mapStores, readStores, storeBytes, type TensorStore } from './kv-cache/tensor-stores.js';
export { EncoderDecoderKVCache, type CrossKV } from './kv-cache/encoder-decoder-cache.js';
export { causalPaddingMask, MASKED } from './kv-cache/attention-mask.js';
export { createKVCache, hasBackendKVCache, type KVCacheKind } from './kv-cache/registry.js';
export { restoreSession, saveSession } from './kv-cache/session-state.js';
export { INT8_KV_BLOCK_SIZE, Int8KVRounding, int8KVQuantize, int8KVScale, kvRoundTrip, toHalf } from './kv-cache/kv-dtype.js';
export { PagedKVStorage, type BlockMemory, type PagedState } from './kv-cache/paged-storage.js';
export { activate, embed, linear, norm, type Activation, type Linear, type Norm } from './layers/ops.js';
export { sinusoidalTable, rotaryTables, applyRotary, type PositionSpec, type SinusoidalSpec, type LearnedSpec } from './layers/positions.js';
export { ParameterSet, hostTensor, transpose2d, type HostTensor } from './weights/host-tensor.js';
export { dequantize, dequantizeQ4K, dequantizeRows, floatToHalf, halfToFloat, quantizeRows, type QuantizedHostTensor } from './weights/quantize.js';
export { greedyCommonPrefix, logitsAgreement, type LogitsAgreement } from './weights/weight-quality.js';
export { LinearWeights, formatOf, weightBytes, type LinearWeight } from './weights/linear-weights.js';
export { randomLlamaParameters, randomGpt2Parameters, randomEncoderDecoderParameters } from './weights/random.js';
