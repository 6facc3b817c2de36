/**
 * The translator page: loads a translation model (the embedded English→Spanish one by default), translates as you
 * watch (streaming, abortable), switches backends without reloading the page, and shows what the KV cache does.
 */
import * as tf from '@tensorflow/tfjs-core';
import { activate as activateCpu } from '@kvt/backend-cpu';
import { activate as activateWasm } from '@kvt/backend-wasm';
import { activate as activateWebgl } from '@kvt/backend-webgl';
import { KvtError, UnsupportedError, tokensPerSecond, translateStream, type TranslateResult } from '@kvt/core';
import { loadModel, openModelFiles, type LoadedModel, type ModelFiles, type ModelSource } from '@kvt/loaders';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const ui = {
  source: $<HTMLTextAreaElement>('source'),
  target: $<HTMLOutputElement>('target'),
  nbest: $<HTMLOListElement>('nbest'),
  translate: $<HTMLButtonElement>('translate'),
  stop: $<HTMLButtonElement>('stop'),
  backend: $<HTMLSelectElement>('backend'),
  backendStatus: $<HTMLSpanElement>('backend-status'),
  beams: $<HTMLInputElement>('beams'),
  maxLength: $<HTMLInputElement>('max-length'),
  useCache: $<HTMLInputElement>('use-cache'),
  ttft: $<HTMLElement>('ttft'),
  tps: $<HTMLElement>('tps'),
  cacheLength: $<HTMLElement>('cache-length'),
  cacheBytes: $<HTMLElement>('cache-bytes'),
  loadDefault: $<HTMLButtonElement>('load-default'),
  modelUrl: $<HTMLInputElement>('model-url'),
  loadUrl: $<HTMLButtonElement>('load-url'),
  modelFiles: $<HTMLInputElement>('model-files'),
  progress: $<HTMLProgressElement>('load-progress'),
  error: $<HTMLParagraphElement>('error'),
  modelName: $<HTMLSpanElement>('model-name'),
};

const DEFAULT_MODEL = new URL('models/en-es/', document.baseURI).href;

/** A model's files with every read kept in memory, so switching backends reloads without downloading again. */
function remembering(files: ModelFiles): ModelFiles {
  const kept = new Map<string, Promise<Uint8Array>>();
  return {
    ...files,
    name: files.name,
    list: () => files.list(),
    exists: async (f) => kept.has(f) || files.exists(f),
    read: (f, onProgress) => {
      if (!kept.has(f)) kept.set(f, files.read(f, onProgress));
      return kept.get(f)!;
    },
  };
}

let current: { loaded: Extract<LoadedModel, { kind: 'encoder-decoder' }>; files: ModelFiles; label: string } | null = null;
let running: AbortController | null = null;
let busy = false;

function showError(message: string | null): void {
  ui.error.hidden = message === null;
  ui.error.textContent = message ?? '';
}

function setBusy(b: boolean): void {
  busy = b;
  ui.translate.disabled = b || !current;
  ui.backend.disabled = b;
  ui.loadDefault.disabled = ui.loadUrl.disabled = ui.modelFiles.disabled = b;
}

async function activateBackend(name: string): Promise<void> {
  if (name === 'webgpu') await (await import('@kvt/backend-webgpu')).activate();
  else if (name === 'webgl') await activateWebgl();
  else if (name === 'wasm') await activateWasm({ wasmPaths: new URL('wasm/', document.baseURI).href });
  else await activateCpu();
  ui.backendStatus.textContent = `active: ${tf.getBackend()}`;
}

/** Loads a model from a source; on any failure the previous model stays loaded and working. */
async function load(source: ModelSource, label: string): Promise<void> {
  setBusy(true);
  showError(null);
  ui.progress.hidden = false;
  ui.progress.value = 0;
  try {
    const files = remembering(await openModelFiles(source));
    const loaded = await loadModel(files, {
      onProgress: (p) => {
        if (p.total) ui.progress.value = p.loaded / p.total;
      },
    });
    if (loaded.kind !== 'encoder-decoder' || !loaded.tokenizer) {
      loaded.dispose();
      throw new UnsupportedError(`${label} is not a translation (encoder-decoder) model with a tokenizer.`);
    }
    current?.loaded.dispose();
    current = { loaded, files, label };
    ui.modelName.textContent = `Model: ${label} (${loaded.format}).`;
  } catch (e) {
    showError(`Could not load ${label}: ${(e as Error).message}${current ? ` The previous model (${current.label}) is still loaded.` : ''}`);
  } finally {
    ui.progress.hidden = true;
    setBusy(false);
  }
}

/** Switches the compute backend and moves the model there (reloaded from the bytes already read). */
async function switchBackend(name: string): Promise<void> {
  setBusy(true);
  showError(null);
  try {
    const prev = current;
    current?.loaded.dispose();
    current = null;
    await activateBackend(name);
    if (prev) {
      const loaded = (await loadModel(prev.files)) as Extract<LoadedModel, { kind: 'encoder-decoder' }>;
      current = { ...prev, loaded };
    }
  } catch (e) {
    showError(`Could not switch to ${name}: ${(e as Error).message}`);
  } finally {
    setBusy(false);
  }
}

const fmtBytes = (b: number) => (b >= 1e6 ? `${(b / 1e6).toFixed(2)} MB` : `${(b / 1e3).toFixed(1)} kB`);

async function runTranslation(): Promise<void> {
  if (!current || busy) return;
  const { loaded } = current;
  const numBeams = Math.min(8, Math.max(1, Number(ui.beams.value) || 1));
  const maxNewTokens = Math.min(256, Math.max(1, Number(ui.maxLength.value) || 64));
  running = new AbortController();
  setBusy(true);
  ui.stop.disabled = false;
  showError(null);
  ui.target.textContent = '';
  ui.nbest.replaceChildren();
  for (const el of [ui.ttft, ui.tps, ui.cacheLength, ui.cacheBytes]) el.textContent = '…';
  const start = performance.now();
  let first = 0;
  let tokens = 0;
  try {
    const stream = translateStream(loaded.model, {
      text: ui.source.value,
      tokenizer: loaded.tokenizer!,
      ...(loaded.targetTokenizer ? { targetTokenizer: loaded.targetTokenizer } : {}),
      ...loaded.generationDefaults,
      numBeams,
      numReturnSequences: numBeams,
      maxNewTokens,
      cache: ui.useCache.checked ? 'backend' : 'none',
      signal: running.signal,
    });
    let result: TranslateResult;
    for (;;) {
      const next = await stream.next();
      if (next.done) {
        result = next.value;
        break;
      }
      tokens++;
      if (!first) ui.ttft.textContent = `${(first = performance.now() - start).toFixed(0)} ms`;
      ui.target.textContent += next.value.text;
      if (tokens > 1) ui.tps.textContent = ((1000 * (tokens - 1)) / (performance.now() - start - first)).toFixed(1);
    }
    const t = result.translations[0]!;
    ui.target.textContent = t.text ?? '';
    const steps = result.timing.decodeMs;
    ui.ttft.textContent = `${result.timing.firstTokenMs.toFixed(0)} ms`;
    ui.tps.textContent = steps.length ? tokensPerSecond(steps).toFixed(1) : '–';
    ui.cacheLength.textContent = result.cache ? String(result.cache.length) : 'no cache';
    ui.cacheBytes.textContent = result.cache ? `${fmtBytes(result.cache.bytes)} (cross-attention ${fmtBytes(result.cache.crossAttentionBytes)})` : '0 (recomputing)';
    if (numBeams > 1)
      for (const h of t.hypotheses) {
        const li = document.createElement('li');
        li.textContent = h.text ?? '';
        const score = document.createElement('span');
        score.textContent = h.score.toFixed(3);
        li.append(score);
        ui.nbest.append(li);
      }
  } catch (e) {
    if (KvtError.isInstance(e) && e.code === 'ABORTED') ui.target.textContent += ' [stopped]';
    else showError((e as Error).message);
  } finally {
    running = null;
    ui.stop.disabled = true;
    setBusy(false);
  }
}

ui.translate.addEventListener('click', () => void runTranslation());
ui.source.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) void runTranslation();
});
ui.stop.addEventListener('click', () => running?.abort());
ui.backend.addEventListener('change', () => void switchBackend(ui.backend.value));
ui.loadDefault.addEventListener('click', () => void load(DEFAULT_MODEL, 'default English→Spanish'));
ui.loadUrl.addEventListener('click', () => ui.modelUrl.value && void load(ui.modelUrl.value, ui.modelUrl.value));
ui.modelFiles.addEventListener('change', () => {
  const files = Array.from(ui.modelFiles.files ?? []);
  if (files.length) void load(files, files.length === 1 ? files[0]!.name : `${files.length} files`);
});

// Start: WebGL when the browser has it, else WASM; then the default model. WebGPU is offered where the browser has it.
(async () => {
  if ('gpu' in navigator) ui.backend.add(new Option('WebGPU', 'webgpu'));
  setBusy(true);
  try {
    await activateBackend('webgl');
    ui.backend.value = 'webgl';
  } catch {
    await activateBackend('wasm');
    ui.backend.value = 'wasm';
  }
  setBusy(false);
  await load(DEFAULT_MODEL, 'default English→Spanish');
  document.body.dataset.ready = 'true';
})();
