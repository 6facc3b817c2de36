// The WebGL package's storage and kernels, without side effects.
export { BucketKVCache } from './kv-cache.js';
