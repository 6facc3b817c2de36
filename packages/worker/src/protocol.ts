/**
 * What crosses between the page and the worker: names, options, token events, results and progress (structured
 * clones). Tensors never cross; models live in the worker and are named by an id.
 */
import type { GenerateRequest, GenerateResult, GenerationEvent, KvtErrorCode, ModelConfig, TranslateRequest, TranslateResult } from '@kvt/core';
import type { CachedFile, LoadProgress, ModelFormat } from '@kvt/loaders';

/** The compute backends a worker can run. */
export type BackendName = 'wasm' | 'cpu' | 'webgl' | 'webgpu';

/** A model loaded in the worker. */
export interface ModelInfo {
  readonly id: number;
  readonly kind: 'decoder-only' | 'encoder-decoder';
  readonly format: ModelFormat;
  readonly config: ModelConfig;
  /** Whether the worker found a tokenizer (so `prompt`/`text` requests work). */
  readonly hasTokenizer: boolean;
  /** Files read, for messages. */
  readonly files: readonly string[];
}

/** Where a model comes from: a URL (a folder or a file), or files the page holds (picked `File`s, bytes by name). */
export type WorkerModelSource = string | readonly File[] | Readonly<Record<string, Uint8Array>>;

/** Options of a request that cannot cross to a worker: functions and the signal (the runtime forwards aborts). */
type LocalOnly = 'tokenizer' | 'targetTokenizer' | 'signal' | 'onToken' | 'logitsProcessors' | 'stoppingCriteria';
export type WorkerGenerateRequest = Omit<GenerateRequest, LocalOnly>;
export type WorkerTranslateRequest = Omit<TranslateRequest, LocalOnly>;

/** A kvt error as it crosses back: its class's code, message and structured fields. */
export interface SerializedError {
  readonly kvt: boolean;
  readonly name: string;
  readonly code?: KvtErrorCode;
  readonly message: string;
  readonly fields: Record<string, unknown>;
}

/** The worker's side, as the page calls it (through comlink). */
export interface WorkerApi {
  activate(backend: BackendName): Promise<string>;
  load(source: WorkerModelSource, options: { cache?: boolean | string }, onProgress?: (p: LoadProgress) => void): Promise<ModelInfo | SerializedError>;
  generate(model: number, request: number, options: WorkerGenerateRequest, onEvent: (e: GenerationEvent) => void): Promise<GenerateResult | SerializedError>;
  translate(model: number, request: number, options: WorkerTranslateRequest, onEvent: (e: GenerationEvent) => void): Promise<TranslateResult | SerializedError>;
  abort(request: number): void;
  unload(model: number): void;
  listCache(): Promise<CachedFile[]>;
  clearCache(prefix?: string): Promise<number>;
  /** Tensors alive in the worker (for leak checks). */
  tensors(): number;
}
