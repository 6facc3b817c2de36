/**
 * @kvt/worker: run kvt models in a Web Worker (browsers) or a worker thread (Node), with the same streaming API as
 * in-thread: load with progress, `generate`/`translate` as `for await` streams, `AbortSignal`, dispose. The page's
 * main thread stays free to paint and answer clicks; tensors never cross, only tokens, text and figures.
 *
 * @example
 * ```ts
 * import { createWorkerRuntime } from '@kvt/worker';
 * const runtime = createWorkerRuntime();
 * await runtime.activate('wasm');
 * const model = await runtime.load('https://example.com/my-model/', { cache: true, onProgress: (p) => show(p) });
 * for await (const e of runtime.translate(model, { text: 'Good morning', signal })) if (e.kind === 'token') out += e.text;
 * model.dispose();
 * ```
 *
 * @packageDocumentation
 */
import * as Comlink from 'comlink';
import {
  AbortedError,
  InvalidOptionError,
  KvtError,
  type GenerateResult,
  type GenerationEvent,
  type KvtErrorCode,
  type TranslateResult,
} from '@kvt/core';
import type { CachedFile, LoadProgress } from '@kvt/loaders';
import { nodeEndpoint, type NodeMessenger } from './node-endpoint.js';
import type {
  BackendName,
  ModelInfo,
  SerializedError,
  WorkerApi,
  WorkerGenerateRequest,
  WorkerModelSource,
  WorkerTranslateRequest,
} from './protocol.js';

export type { BackendName, ModelInfo, WorkerGenerateRequest, WorkerModelSource, WorkerTranslateRequest } from './protocol.js';

/** A model loaded in the worker. */
export interface WorkerModel extends ModelInfo {
  /** Frees the model's weights in the worker. */
  dispose(): Promise<void>;
}

/** Request options as in `generate`/`translate`, with the signal (aborts are forwarded to the worker). */
export type RuntimeGenerateRequest = WorkerGenerateRequest & { signal?: AbortSignal };
export type RuntimeTranslateRequest = WorkerTranslateRequest & { signal?: AbortSignal };

export interface WorkerRuntime {
  /** Starts a compute backend in the worker; resolves to the active tfjs backend's name. */
  activate(backend: BackendName): Promise<string>;
  /** Loads a model in the worker (URL models can be kept in the browser's Cache API: `cache: true`). */
  load(source: WorkerModelSource, options?: { cache?: boolean | string; onProgress?: (p: LoadProgress) => void }): Promise<WorkerModel>;
  /** `generateStream` in the worker: token events (or beam events) as they come; the return value is the result. */
  generate(model: ModelInfo, request: RuntimeGenerateRequest): AsyncGenerator<GenerationEvent, GenerateResult>;
  /** `translateStream` in the worker. */
  translate(model: ModelInfo, request: RuntimeTranslateRequest): AsyncGenerator<GenerationEvent, TranslateResult>;
  /** The model files the browser keeps for later loads. */
  listCachedFiles(): Promise<CachedFile[]>;
  /** Forgets cached model files (under a URL prefix, or all); resolves to how many. */
  clearCache(prefix?: string): Promise<number>;
  /** Tensors alive in the worker (a leak check). */
  tensors(): Promise<number>;
  /** Ends the worker and everything in it. */
  terminate(): void;
}

/** Something that runs the worker side: a Web Worker, or a Node `worker_threads` Worker. */
export type RuntimeWorker = Worker | (NodeMessenger & { terminate(): unknown });

export interface WorkerRuntimeOptions {
  /**
   * The worker to use. Default: a new module Worker on this package's worker script (a bundler emits it), or in Node
   * a worker thread. Give your own when your bundler needs it: `new Worker(new URL('./my-worker.ts', import.meta.url),
   * { type: 'module' })` with `import '@kvt/worker/worker'` inside.
   */
  readonly worker?: RuntimeWorker | undefined;
}

const inNode = typeof process !== 'undefined' && !!process.versions?.node && typeof window === 'undefined';

/**
 * Starts a worker runtime. Options with functions (`logitsProcessors`, `stoppingCriteria`, `onToken`) cannot cross to
 * a worker and are typed errors; use the stream instead of `onToken`.
 *
 * @example
 * ```ts
 * const runtime = createWorkerRuntime();
 * await runtime.activate('wasm');
 * ```
 */
export function createWorkerRuntime(options: WorkerRuntimeOptions = {}): WorkerRuntime {
  const worker = options.worker ?? defaultWorker();
  const remote = inNodeWorker(worker) ? Comlink.wrap<WorkerApi>(nodeEndpoint(worker)) : Comlink.wrap<WorkerApi>(worker as Worker);
  let nextRequest = 1;

  async function* stream<R>(
    call: (request: number, onEvent: (e: GenerationEvent) => void) => Promise<R | SerializedError>,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<GenerationEvent, R> {
    if (signal?.aborted) throw new AbortedError(undefined, signal.reason);
    const request = nextRequest++;
    const queue: GenerationEvent[] = [];
    let wake: (() => void) | undefined;
    let settled: { value: R | SerializedError } | { error: unknown } | undefined;
    const onEvent = (e: GenerationEvent) => {
      queue.push(e);
      wake?.();
    };
    const onAbort = () => void remote.abort(request);
    signal?.addEventListener('abort', onAbort);
    call(request, Comlink.proxy(onEvent)).then(
      (value) => ((settled = { value }), wake?.()),
      (error: unknown) => ((settled = { error }), wake?.()),
    );
    try {
      for (;;) {
        while (queue.length > 0) yield queue.shift()!;
        if (settled) break;
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
      while (queue.length > 0) yield queue.shift()!;
      if ('error' in settled) throw settled.error;
      return unwrap(settled.value);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      if (!settled) void remote.abort(request); // the caller stopped iterating: stop the worker too
    }
  }

  return {
    activate: (backend) => remote.activate(backend),
    async load(source, o = {}) {
      const info = unwrap(await remote.load(source, o.cache === undefined ? {} : { cache: o.cache }, o.onProgress ? Comlink.proxy(o.onProgress) : undefined));
      return { ...info, dispose: () => remote.unload(info.id) };
    },
    generate(model, request) {
      const { signal, ...rest } = request;
      checkSerializable(rest);
      return stream((id, onEvent) => remote.generate(model.id, id, rest, onEvent), signal);
    },
    translate(model, request) {
      const { signal, ...rest } = request;
      checkSerializable(rest);
      return stream((id, onEvent) => remote.translate(model.id, id, rest, onEvent), signal);
    },
    listCachedFiles: () => remote.listCache(),
    clearCache: (prefix) => remote.clearCache(prefix),
    tensors: () => remote.tensors(),
    terminate: () => {
      remote[Comlink.releaseProxy]();
      void worker.terminate();
    },
  };
}

/** Options whose values are functions cannot be sent to a worker. */
function checkSerializable(request: object): void {
  for (const [k, v] of Object.entries(request)) {
    if (typeof v === 'function' || (Array.isArray(v) && v.some((x) => typeof x === 'function')))
      throw new InvalidOptionError(k, v, 'no functions: a worker runtime cannot run the page\'s code (iterate the stream instead of onToken)');
  }
}

/** A reply, or the typed error it carries (kvt errors keep their code and fields; an abort its partial result). */
function unwrap<T>(reply: T | SerializedError): T {
  if (!isSerializedError(reply)) return reply;
  if (reply.code === 'ABORTED') throw new AbortedError(reply.fields.partial);
  if (reply.kvt && reply.code) throw Object.assign(new KvtError(reply.code as KvtErrorCode, reply.message), reply.fields, { name: reply.name });
  throw Object.assign(new Error(reply.message), { name: reply.name });
}

function isSerializedError(v: unknown): v is SerializedError {
  return typeof v === 'object' && v !== null && 'kvt' in v && 'message' in v && 'fields' in v;
}

function inNodeWorker(w: RuntimeWorker): w is NodeMessenger & RuntimeWorker {
  return typeof (w as { on?: unknown }).on === 'function' && typeof (w as Worker).addEventListener !== 'function';
}

function defaultWorker(): RuntimeWorker {
  if (inNode) {
    // Node ≥ 20.16: no top-level import of node:worker_threads, so browser bundles never see it
    const threads = (process as unknown as { getBuiltinModule(m: string): typeof import('node:worker_threads') }).getBuiltinModule('node:worker_threads');
    return new threads.Worker(new URL('./node-worker-entry.js', import.meta.url)) as unknown as RuntimeWorker;
  }
  return new Worker(new URL('./worker-entry.js', import.meta.url), { type: 'module' });
}
