// The WebGL package's storage and kernels, without side effects: the WebGPU package uses the same bucket cache.
export { BucketKVCache } from './kv-cache.js';
