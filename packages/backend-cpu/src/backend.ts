import * as tf from '@tensorflow/tfjs-core';
import { activateTfBackend, type Backend } from '@kvt/kernels';
import { HostKVCache } from './kernels/kv-cache.js';

/**
 * The cpu backend: tfjs-cpu for every op, and a KV cache in host memory written in place with a fused decode
 * attention (kernels/kv-cache.ts; docs/decisions/0002-kv-cache-storage.md).
 *
 * @example
 * ```ts
 * import { cpuBackend } from '@kvt/backend-cpu';
 * await cpuBackend.activate();
 * ```
 */
export const cpuBackend: Backend = {
  name: 'cpu',
  weightFormats: ['fp32', 'fp16', 'q8_0', 'q4_0', 'q4_k'],
  async activate(): Promise<void> {
    tf.env().set('PROD', true); // tfjs-cpu's "install tfjs-node" banner is only silenced in production mode
    await activateTfBackend('cpu');
  },
  createKVCache: (options) => new HostKVCache(options),
};
