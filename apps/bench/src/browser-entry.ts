/** The browser side of the harness, bundled by scripts/bundle-browser.mjs and driven by browser-runner.ts. */
import * as tf from '@tensorflow/tfjs-core';
import '@kvt/backend-cpu';
import { activate as activateWasm } from '@kvt/backend-wasm';
import '@kvt/backend-webgl';
import { measure, type RunRecord, type RunSpec } from './measure.js';
import { buildModelFor } from './model-zoo.js';

declare global {
  interface Window {
    kvtBench: (specs: RunSpec[], base: string) => Promise<RunRecord[]>;
    kvtBenchProgress: (done: number) => void;
  }
}

const tfName = (backend: string) => (backend === 'wasm-browser' ? 'wasm' : backend);

window.kvtBench = async (specs, base) => {
  const records: RunRecord[] = [];
  const memory = () => (performance as unknown as { memory?: { usedJSHeapSize: number } }).memory?.usedJSHeapSize ?? null;
  for (const s of specs) {
    const name = tfName(s.backend);
    if (name === 'wasm') await activateWasm({ wasmPaths: `${base}wasm/` });
    else if (name === 'webgpu') await (await import('@kvt/backend-webgpu')).activate();
    else if (!(await tf.setBackend(name))) throw new Error(`backend ${name} is not available`);
    await tf.ready();
    const t0 = performance.now();
    const model = await buildModelFor(s.model, (p) => `${base}fixtures/${p}`, s.weights);
    const loadMs = performance.now() - t0;
    try {
      const r = await measure(model, s, loadMs, memory);
      records.push({ ...r, backend: s.backend });
    } finally {
      model.model.dispose();
    }
    window.kvtBenchProgress?.(records.length);
  }
  return records;
};
