/**
 * The translator page: every model, backend and generation runs in a Web Worker (`@kvt/worker`), so this thread only
 * draws: the page keeps painting and Stop answers within one decode step on every backend. Model files are kept in
 * the browser's cache (a reload downloads nothing), beam search shows its best hypothesis as it changes, and typing
 * translates (debounced, cancelling the previous run).
 */
import { createWorkerRuntime, type BackendName, type WorkerModel, type WorkerModelSource } from '@kvt/worker';
import { KvtError, tokensPerSecond, type TranslateResult } from '@kvt/core';
import type { LoadProgress } from '@kvt/loaders';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const ui = {
  source: $<HTMLTextAreaElement>('source'),
  target: $<HTMLOutputElement>('target'),
  statusLine: $<HTMLParagraphElement>('status-line'),
  nbest: $<HTMLOListElement>('nbest'),
  translate: $<HTMLButtonElement>('translate'),
  stop: $<HTMLButtonElement>('stop'),
  asYouType: $<HTMLInputElement>('as-you-type'),
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
  defaultWeights: $<HTMLSelectElement>('default-weights'),
  clearCache: $<HTMLButtonElement>('clear-cache'),
  modelUrl: $<HTMLInputElement>('model-url'),
  loadUrl: $<HTMLButtonElement>('load-url'),
  modelFiles: $<HTMLInputElement>('model-files'),
  loadLabel: $<HTMLLabelElement>('load-label'),
  progress: $<HTMLProgressElement>('load-progress'),
  cacheInfo: $<HTMLParagraphElement>('cache-info'),
  error: $<HTMLParagraphElement>('error'),
  modelName: $<HTMLSpanElement>('model-name'),
};

/** The default English→Spanish model, by weight format: q8_0 (8 MB, the same BLEU) or fp16 (15 MB). */
const DEFAULT_MODELS = {
  q8_0: { url: new URL('models/en-es-q8_0/', document.baseURI).href, label: 'default English→Spanish, q8_0' },
  fp16: { url: new URL('models/en-es/', document.baseURI).href, label: 'default English→Spanish, fp16' },
} as const;
const loadDefaultModel = () => {
  const chosen = DEFAULT_MODELS[ui.defaultWeights.value as keyof typeof DEFAULT_MODELS];
  return load(chosen.url, chosen.label);
};
const runtime = createWorkerRuntime({ worker: new Worker(new URL('./translator-worker.ts', import.meta.url), { type: 'module' }) });

/** The loaded model, and where it came from (to load it again on another backend: from the cache, or the files). */
let current: { model: WorkerModel; source: WorkerModelSource; label: string } | null = null;
let running: AbortController | null = null;
let loading = false;
/** For the page's own figures and tests: tokens streamed in this run, and how many came after Stop was pressed. */
const counts = { tokens: 0, atStop: -1 };

const fmtBytes = (b: number) => (b >= 1e6 ? `${(b / 1e6).toFixed(2)} MB` : `${(b / 1e3).toFixed(1)} kB`);

function showError(message: string | null): void {
  ui.error.hidden = message === null;
  ui.error.textContent = message ?? '';
}

/** Says what went wrong in the user's terms: the network, a missing file, or files that are not a model. */
function explain(e: unknown, what: string): string {
  if (KvtError.isInstance(e)) {
    const err = e as KvtError & { reason?: string };
    if (err.code === 'FILE_ACCESS' && err.reason === 'network') return `Network error while loading ${what}: ${err.message}`;
    if (err.code === 'FILE_ACCESS') return `A file of ${what} is missing: ${err.message}`;
    if (err.code === 'MODEL_FORMAT' || err.code === 'UNSUPPORTED' || err.code === 'SHAPE_MISMATCH') return `${what} is not a model kvt can read: ${err.message}`;
    return err.message;
  }
  return `${what}: ${(e as Error)?.message ?? String(e)}`;
}

function setLoading(b: boolean): void {
  loading = b;
  ui.translate.disabled = b || !current;
  ui.backend.disabled = b;
  ui.loadDefault.disabled = ui.defaultWeights.disabled = ui.loadUrl.disabled = ui.modelFiles.disabled = ui.clearCache.disabled = b;
}

function resetFigures(text = '–'): void {
  for (const el of [ui.ttft, ui.tps, ui.cacheLength, ui.cacheBytes]) el.textContent = text;
}

function showProgress(p: LoadProgress | null): void {
  if (p && !loading) return; // a report that crossed from the worker after the load ended
  ui.progress.hidden = ui.loadLabel.hidden = p === null;
  if (!p) return;
  const from = p.from === 'cache' ? 'from this browser’s cache' : p.from === 'network' ? 'downloading' : 'reading';
  const size = p.total ? `${fmtBytes(p.loaded)} of ${fmtBytes(p.total)}` : fmtBytes(p.loaded);
  ui.loadLabel.textContent = `File ${p.fileIndex ?? 1}, ${p.file}: ${from}, ${size}`;
  if (p.total) ui.progress.value = p.loaded / p.total;
}

async function refreshCacheInfo(): Promise<void> {
  const files = await runtime.listCachedFiles();
  const bytes = files.reduce((s, f) => s + f.bytes, 0);
  ui.cacheInfo.textContent = files.length ? `This browser keeps ${files.length} model files (${fmtBytes(bytes)}) for the next visit.` : 'No model files kept in this browser.';
}

/** Loads a model in the worker; on any failure the previous model stays loaded and working. */
async function load(source: WorkerModelSource, label: string): Promise<void> {
  setLoading(true);
  showError(null);
  showProgress({ file: '…', loaded: 0 });
  try {
    const model = await runtime.load(source, { cache: typeof source === 'string', onProgress: showProgress });
    if (model.kind !== 'encoder-decoder' || !model.hasTokenizer) {
      await model.dispose();
      throw new KvtError('UNSUPPORTED', `${label} is not a translation (encoder-decoder) model with a tokenizer.`);
    }
    await current?.model.dispose();
    current = { model, source, label };
    ui.modelName.textContent = `Model: ${label} (${model.format}).`;
  } catch (e) {
    showError(`${explain(e, label)}${current ? ` The previous model (${current.label}) is still loaded.` : ''}`);
  } finally {
    setLoading(false);
    showProgress(null);
    void refreshCacheInfo();
  }
}

async function activate(name: BackendName): Promise<void> {
  ui.backendStatus.textContent = `active: ${await runtime.activate(name)}`;
}

/** Switches the compute backend and builds the model there again (URL models come from the browser's cache). */
async function switchBackend(name: BackendName): Promise<void> {
  running?.abort();
  setLoading(true);
  showError(null);
  try {
    await activate(name);
    if (current) {
      const { source, label } = current;
      await current.model.dispose();
      current = null;
      setLoading(false);
      await load(source, label);
    }
  } catch (e) {
    showError(`Could not switch to ${name}: ${explain(e, name)}`);
  } finally {
    setLoading(false);
  }
}

async function runTranslation(): Promise<void> {
  if (!current || loading) return;
  running?.abort(); // a new run replaces the one in flight
  const text = ui.source.value;
  if (text.trim() === '') {
    ui.target.textContent = '';
    return;
  }
  const controller = new AbortController();
  running = controller;
  const numBeams = Math.min(8, Math.max(1, Number(ui.beams.value) || 1));
  const maxNewTokens = Math.min(256, Math.max(1, Number(ui.maxLength.value) || 64));
  ui.stop.disabled = false;
  showError(null);
  ui.target.textContent = '';
  ui.statusLine.textContent = 'translating…';
  ui.nbest.replaceChildren();
  resetFigures('…');
  counts.tokens = 0;
  counts.atStop = -1;
  document.body.dataset.translating = 'true';
  const start = performance.now();
  let first = 0;
  try {
    const stream = runtime.translate(current.model, {
      text,
      numBeams,
      numReturnSequences: numBeams,
      maxNewTokens,
      cache: ui.useCache.checked ? 'backend' : 'none',
      signal: controller.signal,
    });
    let result: TranslateResult;
    for (;;) {
      const next = await stream.next();
      if (next.done) {
        result = next.value;
        break;
      }
      const e = next.value;
      if (!first) ui.ttft.textContent = `${(first = performance.now() - start).toFixed(0)} ms`;
      if (e.kind === 'token') {
        counts.tokens++;
        ui.target.textContent += e.text;
        if (counts.tokens > 1) ui.tps.textContent = ((1000 * (counts.tokens - 1)) / (performance.now() - start - first)).toFixed(1);
      } else {
        counts.tokens++;
        ui.target.textContent = e.text ?? ''; // beam search: the best hypothesis so far
        ui.statusLine.textContent = e.final ? '' : `best of ${numBeams} beams so far (score ${e.score.toFixed(3)})`;
      }
    }
    const t = result.translations[0]!;
    ui.target.textContent = t.text ?? '';
    ui.statusLine.textContent = '';
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
    if (KvtError.isInstance(e) && e.code === 'ABORTED') {
      if (running === controller) {
        ui.statusLine.textContent = 'stopped';
        resetFigures();
      }
    } else showError(explain(e, 'the translation'));
  } finally {
    if (counts.atStop >= 0) document.body.dataset.tokensAfterStop = String(counts.tokens - counts.atStop);
    if (running === controller) {
      running = null;
      ui.stop.disabled = true;
      delete document.body.dataset.translating;
    }
  }
}

function stop(): void {
  if (!running) return;
  counts.atStop = counts.tokens;
  running.abort();
}

let typing: ReturnType<typeof setTimeout> | undefined;
ui.source.addEventListener('input', () => {
  if (!ui.asYouType.checked) return;
  clearTimeout(typing);
  typing = setTimeout(() => void runTranslation(), 400);
});
ui.translate.addEventListener('click', () => void runTranslation());
document.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
    e.preventDefault();
    void runTranslation();
  } else if (e.key === 'Escape') stop();
});
ui.stop.addEventListener('click', stop);
ui.backend.addEventListener('change', () => void switchBackend(ui.backend.value as BackendName));
ui.loadDefault.addEventListener('click', () => void loadDefaultModel());
ui.loadUrl.addEventListener('click', () => ui.modelUrl.value && void load(ui.modelUrl.value, ui.modelUrl.value));
ui.modelFiles.addEventListener('change', () => {
  const files = Array.from(ui.modelFiles.files ?? []);
  if (files.length) void load(files, files.length === 1 ? files[0]!.name : `${files.length} files`);
});
ui.clearCache.addEventListener('click', async () => {
  await runtime.clearCache();
  void refreshCacheInfo();
});

// Start: WebGL when the browser has it (in the worker, on an OffscreenCanvas), else WASM; then the default model.
(async () => {
  if ('gpu' in navigator) ui.backend.add(new Option('WebGPU', 'webgpu'));
  setLoading(true);
  try {
    await activate('webgl');
    ui.backend.value = 'webgl';
  } catch {
    await activate('wasm');
    ui.backend.value = 'wasm';
  }
  setLoading(false);
  await loadDefaultModel();
  document.body.dataset.ready = 'true';
})();
