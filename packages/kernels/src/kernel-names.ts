/**
 * kvt's own kernels, by name, registered per backend with tfjs's `registerKernel` (as tfjs names its kernels in
 * `kernel_names.ts`). A backend package registers those it implements; where one is missing the architectures
 * compose the same computation from plain tfjs ops. Inputs and attributes of each are declared in `decode-kernels.ts`.
 */

/** `y [m, out] = x [m, in] · W`: W float32 `[in, out]`, or quantized rows `[out, in]` (attribute `format`). */
export const KvtLinear = 'KvtLinear';
/** Rows `ids` of a quantized table `[rows, dim]` as float32 `[n, dim]` (an embedding lookup). */
export const KvtGatherRows = 'KvtGatherRows';
/** `y [m, d] = x · rsqrt(mean(x²) + ε) · weight`. */
export const KvtRmsNorm = 'KvtRmsNorm';
/** A whole Llama block over the new positions, appending K/V to the backend's cache (see {@link LlamaBlockAttrs}). */
export const KvtLlamaBlock = 'KvtLlamaBlock';
/** Appends the step's K/V rows to the backend's cache and attends over the valid positions (see {@link CacheAttendAttrs}). */
export const KvtCacheAttend = 'KvtCacheAttend';

export type KvtKernelName = typeof KvtLinear | typeof KvtGatherRows | typeof KvtRmsNorm | typeof KvtLlamaBlock | typeof KvtCacheAttend;
