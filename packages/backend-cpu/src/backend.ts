import * as tf from '@tensorflow/tfjs-core';
import { activateTfBackend, type Backend } from '@kvt/kernels';
import { HostKVCache } from './kernels/kv-cache.js';

/**
 * The cpu backend: tfjs-cpu for every op, and a paged KV cache in host memory (float32, fp16 or int8) written in
 * place, with decode attention over its blocks (kernels/kv-cache.ts; docs/decisions/0002 and 0011).
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
  kvDtypes: ['fp32', 'fp16', 'int8'],
  async activate(): Promise<void> {
    tf.env().set('PROD', true); // tfjs-cpu's "install tfjs-node" banner is only silenced in production mode
    await activateTfBackend('cpu');
  },
  createKVCache: (options) => new HostKVCache(options),
};
