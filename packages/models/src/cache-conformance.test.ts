import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { describeCacheConformance } from './testing/conformance.js';

// The reference concat cache on the two backends that run in Node.
describeCacheConformance({ backend: 'cpu', cache: 'concat' });
describeCacheConformance({ backend: 'wasm', cache: 'concat' });
