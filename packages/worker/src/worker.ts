/**
 * The worker's side: loads models with the loaders, runs `generateStream`/`translateStream`, and answers the page
 * through comlink. Each model keeps its tokenizers here; requests name it by id.
 */
import * as Comlink from 'comlink';
import * as tf from '@tensorflow/tfjs-core';
import { InvalidOptionError, KvtError, UnsupportedError, generateStream, translateStream, type GenerationEvent } from '@kvt/core';
import { clearModelCache, listCachedModelFiles, loadModel, type LoadedModel } from '@kvt/loaders';
import type { BackendName, ModelInfo, SerializedError, WorkerApi, WorkerModelSource } from './protocol.js';

/** What the page sees of an error: kvt errors keep their code and fields (an abort keeps its partial result). */
export function serializeError(e: unknown): SerializedError {
  if (KvtError.isInstance(e)) {
    const fields: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(e)) if (k !== 'code' && typeof v !== 'function') fields[k] = v;
    return { kvt: true, name: e.name, code: e.code, message: e.message, fields };
  }
  const err = e as Error;
  return { kvt: false, name: err?.name ?? 'Error', message: err?.message ?? String(e), fields: {} };
}

const BACKENDS: Record<BackendName, () => Promise<{ activate(): Promise<void> }>> = {
  wasm: () => import('@kvt/backend-wasm'),
  cpu: () => import('@kvt/backend-cpu'),
  webgl: () => import('@kvt/backend-webgl'),
  webgpu: () => import('@kvt/backend-webgpu'),
};

/** The worker's implementation of {@link WorkerApi}. */
export function createWorkerApi(): WorkerApi {
  const models = new Map<number, LoadedModel>();
  const requests = new Map<number, AbortController>();
  let nextModel = 1;

  const model = (id: number): LoadedModel => {
    const m = models.get(id);
    if (!m) throw new InvalidOptionError('model', id, 'a model this worker loaded and has not unloaded');
    return m;
  };
  /**
   * Runs a stream to its end, sending each event to the page; the result (or the error) comes back as the reply, once
   * every event was delivered: events travel on the callback's own port, which is not ordered with the reply's.
   */
  const run = async <R>(request: number, stream: (signal: AbortSignal) => AsyncGenerator<GenerationEvent, R>, onEvent: (e: GenerationEvent) => unknown) => {
    const controller = new AbortController();
    requests.set(request, controller);
    const delivered: unknown[] = [];
    try {
      const it = stream(controller.signal);
      for (;;) {
        const next = await it.next();
        if (next.done) return next.value;
        delivered.push(onEvent(next.value)); // not awaited: the next step runs while the page receives this one
      }
    } catch (e) {
      return serializeError(e);
    } finally {
      requests.delete(request);
      await Promise.allSettled(delivered);
    }
  };

  return {
    async activate(backend) {
      const load = BACKENDS[backend];
      if (!load) throw new UnsupportedError(`No backend "${backend}"; use wasm, cpu, webgl or webgpu.`);
      await (await load()).activate();
      return tf.getBackend();
    },
    async load(source: WorkerModelSource, options, onProgress) {
      try {
        const loaded = await loadModel(source as never, { ...options, ...(onProgress ? { onProgress: (p) => void onProgress(p) } : {}) });
        const id = nextModel++;
        models.set(id, loaded);
        const info: ModelInfo = { id, kind: loaded.kind, format: loaded.format, config: loaded.model.config, hasTokenizer: !!loaded.tokenizer, files: loaded.files };
        return info;
      } catch (e) {
        return serializeError(e);
      }
    },
    generate(id, request, options, onEvent) {
      return run(request, (signal) => {
        const m = model(id);
        if (m.kind !== 'decoder-only') throw new UnsupportedError('This model is an encoder-decoder: use translate.');
        return generateStream(m.model, { ...options, ...(m.tokenizer ? { tokenizer: m.tokenizer } : {}), signal });
      }, onEvent);
    },
    translate(id, request, options, onEvent) {
      return run(request, (signal) => {
        const m = model(id);
        if (m.kind !== 'encoder-decoder') throw new UnsupportedError('This model is decoder-only: use generate.');
        return translateStream(m.model, {
          ...options,
          ...(m.tokenizer ? { tokenizer: m.tokenizer } : {}),
          ...(m.targetTokenizer ? { targetTokenizer: m.targetTokenizer } : {}),
          signal,
        });
      }, onEvent);
    },
    abort(request) {
      requests.get(request)?.abort();
    },
    unload(id) {
      models.get(id)?.dispose();
      models.delete(id);
    },
    listCache: () => listCachedModelFiles(),
    clearCache: (prefix) => clearModelCache(prefix),
    tensors: () => tf.memory().numTensors,
  };
}

/** Answers the page (or the Node thread that started this worker) on `endpoint`. */
export function exposeWorkerApi(endpoint?: Comlink.Endpoint): void {
  Comlink.expose(createWorkerApi(), endpoint);
}
