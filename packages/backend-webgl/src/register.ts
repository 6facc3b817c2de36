// The package's only side effect: tfjs's webgl backend and the backend description, registered; activated where the
// page has WebGL (a browser without it keeps its current backend; an explicit activate() still throws).
import '@tensorflow/tfjs-backend-webgl';
import { registerBackend } from '@kvt/kernels';
import { webglBackend } from './backend.js';

registerBackend(webglBackend);
if (typeof document !== 'undefined') await webglBackend.activate().catch((e: unknown) => console.warn(`kvt: WebGL unavailable: ${String(e)}`));
