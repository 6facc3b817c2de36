// The package's only side effect: tfjs's cpu backend, kvt's cpu kernels and the backend description, registered;
// the backend activated.
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { registerBackend } from '@kvt/kernels';
import { cpuBackend } from './backend.js';
import { cpuKernelConfigs } from './kernels/decode-kernels.js';

for (const config of cpuKernelConfigs) tf.registerKernel(config);
registerBackend(cpuBackend);
await cpuBackend.activate();
