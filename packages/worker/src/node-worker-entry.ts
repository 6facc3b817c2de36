// The Node worker_threads script of `@kvt/worker`: answers `createWorkerRuntime()` in the thread that started it.
import { parentPort } from 'node:worker_threads';
import { nodeEndpoint } from './node-endpoint.js';
import { exposeWorkerApi } from './worker.js';

if (!parentPort) throw new Error('@kvt/worker/dist/node-worker-entry.js runs in a worker thread (new Worker(url)).');
exposeWorkerApi(nodeEndpoint(parentPort));
