// The package's only side effect: tfjs's cpu backend and the backend description, registered and activated.
import '@tensorflow/tfjs-backend-cpu';
import { registerBackend } from '@kvt/kernels';
import { cpuBackend } from './backend.js';

registerBackend(cpuBackend);
await cpuBackend.activate();
