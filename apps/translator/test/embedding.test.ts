/**
 * @kvt/backend-wasm in other people's pages, with no copy step: a minimal app built by Vite, and a plain ES-module page
 * whose import map points at each package's files (as a CDN serves them). Both translate with the default model in
 * headless Chromium; the .wasm files come from beside the package.
 */
import '@kvt/backend-wasm';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { translate } from '@kvt/core';
import { loadModel } from '@kvt/loaders';
import { modelFiles } from '@kvt/model-en-es';
import { CHROMIUM_ARGS, chromiumPath, serveStatic } from './serve.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../../..');
const wasmBuilt = existsSync(join(repo, 'packages/backend-wasm/wasm/tfjs-backend-wasm-simd.wasm')) && existsSync(join(repo, 'packages/backend-wasm/dist/index.js'));
const ready = wasmBuilt && !!chromiumPath() && existsSync(join(modelFiles.path, 'model.safetensors'));

describe.skipIf(!ready)('@kvt/backend-wasm in a page that is not ours', () => {
  let browser: Browser;
  let expected: string;
  const temp: string[] = [];
  beforeAll(async () => {
    const loaded = await loadModel(modelFiles.path);
    if (loaded.kind !== 'encoder-decoder') throw new Error('expected the translation model');
    expected = (await translate(loaded.model, { text: 'Where is the train station?', tokenizer: loaded.tokenizer!, numBeams: 1 })).translations[0]!.text!;
    loaded.dispose();
    browser = await chromium.launch({ executablePath: chromiumPath()!, args: CHROMIUM_ARGS, headless: true });
  });
  afterAll(async () => {
    await browser?.close();
    temp.forEach((d) => rmSync(d, { recursive: true, force: true }));
  });

  /** Opens a served page and waits for the translation it writes into its body. */
  const translationOf = async (url: string) => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url);
    await page.waitForFunction(() => document.body.dataset.translation !== undefined, undefined, { timeout: 120_000 }).catch(() => undefined);
    const text = await page.evaluate(() => document.body.dataset.translation);
    await page.close();
    expect(errors, 'page errors').toEqual([]);
    return text;
  };

  it('a minimal app built by Vite (the package as published: its dist and wasm/ folder)', async () => {
    const out = mkdtempSync(join(tmpdir(), 'kvt-vite-'));
    temp.push(out);
    await build({
      root: join(here, 'minimal-vite'),
      logLevel: 'silent',
      configFile: false,
      build: { outDir: out, emptyOutDir: true, target: 'es2022' },
    });
    const { url, server } = await serveStatic(out, { '/models/en-es/': modelFiles.path });
    try {
      expect(await translationOf(url)).toBe(expected);
    } finally {
      server.close();
    }
  });

  it('a plain ES-module page with an import map (no bundler)', async () => {
    const require = createRequire(join(repo, 'packages/backend-wasm/package.json'));
    const resolveFrom = (pkg: string, spec: string) => realpathSync(createRequire(join(repo, `packages/${pkg}/package.json`)).resolve(spec));
    const fromRepo = (file: string) => `/${relative(repo, file).split('\\').join('/')}`;
    const imports: Record<string, string> = {
      '@kvt/core': '/packages/core/dist/index.js',
      '@kvt/kernels': '/packages/kernels/dist/index.js',
      '@kvt/models': '/packages/models/dist/index.js',
      '@kvt/loaders': '/packages/loaders/dist/index.js',
      '@kvt/backend-wasm': '/packages/backend-wasm/dist/index.js',
      '@tensorflow/tfjs-core': fromRepo(join(dirname(realpathSync(require.resolve('@tensorflow/tfjs-core/package.json'))), 'dist/tf-core.fesm.js')),
      '@tensorflow/tfjs-backend-wasm': fromRepo(join(dirname(realpathSync(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'))), 'dist/tf-backend-wasm.fesm.js')),
      // its browser (ES module) build, beside the Node one that require.resolve finds
      '@huggingface/tokenizers': fromRepo(join(dirname(resolveFrom('loaders', '@huggingface/tokenizers')), 'tokenizers.mjs')),
      // tfjs-backend-wasm's ES build names Node modules its package.json's "browser" field empties: empty them here too
      ...Object.fromEntries(['fs', 'path', 'os', 'perf_hooks', 'worker_threads'].map((m) => [m, 'data:text/javascript,export default {}'])),
    };
    const dir = mkdtempSync(join(repo, 'apps/translator/test/.plain-esm-'));
    temp.push(dir);
    writeFileSync(join(dir, 'index.html'), readFileSync(join(here, 'plain-esm/index.html'), 'utf8').replace('__IMPORT_MAP__', JSON.stringify({ imports })));
    const { url, server } = await serveStatic(repo, { '/models/en-es/': modelFiles.path });
    try {
      expect(await translationOf(`${url}${relative(repo, dir)}/index.html`)).toBe(expected);
    } finally {
      server.close();
    }
  });
});
