// Copies tfjs-backend-wasm's three .wasm binaries into this package's wasm/ folder (published with it), so the
// package finds them beside itself (new URL('../wasm/…', import.meta.url)) in any bundler or plain ES-module page.
import { copyFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const from = dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
const to = join(here, '..', 'wasm');
mkdirSync(to, { recursive: true });
for (const f of ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm']) copyFileSync(join(from, f), join(to, f));
