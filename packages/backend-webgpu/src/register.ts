// The package's only side effect: tfjs's webgpu backend and the backend description, registered; activated where
// the page has WebGPU (elsewhere the current backend stays; an explicit activate() still throws).
import '@tensorflow/tfjs-backend-webgpu';
import { registerBackend } from '@kvt/kernels';
import { webgpuBackend } from './backend.js';

registerBackend(webgpuBackend);
if (typeof navigator !== 'undefined' && 'gpu' in navigator)
  await webgpuBackend.activate().catch((e: unknown) => console.warn(`kvt: WebGPU unavailable: ${String(e)}`));
