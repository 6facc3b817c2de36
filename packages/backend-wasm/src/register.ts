// The package's only side effect: tfjs's wasm backend, kvt's wasm kernels and the backend description, registered.
import '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs-core';
import { registerBackend } from '@kvt/kernels';
import { wasmBackend } from './backend.js';
import { wasmKernelConfigs } from './kernels/decode-kernels.js';

for (const config of wasmKernelConfigs) tf.registerKernel(config);
registerBackend(wasmBackend);

// In Node the .wasm files are found beside the package: activate on import. Browsers call activate({ wasmPaths }).
if (typeof process !== 'undefined' && process.versions?.node) await wasmBackend.activate();
