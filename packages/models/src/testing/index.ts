/** Test helpers for backend packages: the cache conformance suite and tiny seeded models. Imports vitest. */
export { describeCacheConformance, expectClose, type ConformanceOptions } from './conformance.js';
export { tinyDecoderOnlyModels, tinyEncoderDecoderModels, type TinyDecoderOnly, type TinyEncoderDecoder } from './tiny-models.js';
export { describeKernelConformance, type KernelConformanceOptions } from './kernel-conformance.js';
export { dequantizedLlamaParameters } from './dequantized.js';
export { describeSlidingWindow, type SlidingWindowOptions } from './sliding-window.js';
export { STORY_PROMPTS, describeKVDtypeQuality, type KVDtypeQualityOptions } from './kv-dtype-quality.js';
export { describePagedBlocks, type PagedBlocksOptions } from './paged-blocks.js';
