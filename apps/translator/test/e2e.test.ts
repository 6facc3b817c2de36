/**
 * End to end in a real browser: the built translator page served on 127.0.0.1, driven by playwright-core in Debian's
 * headless Chromium. The expected translation is computed here, in Node, with the same model through kvt's library.
 */
import '@kvt/backend-wasm';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { translate } from '@kvt/core';
import { loadModel } from '@kvt/loaders';
import { modelFiles, quantizedModelFiles } from '@kvt/model-en-es';
import { CHROMIUM_ARGS, chromiumPath, serveStatic } from './serve.js';

const dist = resolve(dirname(fileURLToPath(import.meta.url)), '../dist');
const SENTENCE = 'Where is the train station?';
const LONG = 'I would like to know where the train station is, because my friends are waiting for me there and we are going to visit the old town together tomorrow morning before the museum opens.';
const ready = existsSync(join(dist, 'index.html')) && !!chromiumPath() && existsSync(join(modelFiles.path, 'model.safetensors'));

describe.skipIf(!ready)('translator page in headless Chromium', () => {
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let close: () => void;
  let url: string;
  let expected: string;
  let expectedFp16: string;

  const open = async (p: Page) => {
    await p.goto(url);
    await p.waitForSelector('body[data-ready="true"]', { timeout: 180_000 });
  };

  beforeAll(async () => {
    // the page's defaults: the q8_0 model, greedy, 64 new tokens, the model's other generation settings
    const translated = async (path: string) => {
      const loaded = await loadModel(path);
      if (loaded.kind !== 'encoder-decoder') throw new Error('expected the translation model');
      const r = await translate(loaded.model, { text: SENTENCE, tokenizer: loaded.tokenizer!, numBeams: 1, maxNewTokens: 64 });
      loaded.dispose();
      return r.translations[0]!.text!;
    };
    expected = await translated(quantizedModelFiles.path);
    expectedFp16 = await translated(modelFiles.path);
    const served = await serveStatic(dist);
    url = served.url;
    close = () => served.server.close();
    browser = await chromium.launch({ executablePath: chromiumPath()!, args: CHROMIUM_ARGS, headless: true });
    context = await browser.newContext();
    page = await context.newPage();
    page.on('pageerror', (e) => console.error('page error:', e.message));
    await open(page);
    await page.uncheck('#as-you-type');
  });
  afterAll(async () => {
    await browser?.close();
    close?.();
  });

  const finished = (p: Page) =>
    p.waitForFunction(() => document.body.dataset.translating === undefined && document.getElementById('target')!.textContent !== '', undefined, { timeout: 180_000 });
  const translateOnPage = async (text: string, p = page): Promise<string> => {
    await p.fill('#source', text);
    await p.click('#translate');
    await finished(p);
    return (await p.textContent('#target'))!.trim();
  };
  const useBackend = async (backend: string) => {
    await page.selectOption('#backend', backend);
    await page.waitForFunction((b) => document.getElementById('backend-status')!.textContent === `active: ${b}` && !(document.getElementById('translate') as HTMLButtonElement).disabled, backend, { timeout: 180_000 });
  };

  it('translates a typed sentence as kvt does in Node (greedy), in the worker', async () => {
    expect(expected.length).toBeGreaterThan(0);
    expect(await translateOnPage(SENTENCE)).toBe(expected);
  });

  for (const backend of ['wasm', 'cpu', 'webgl']) {
    it(`gives the same output after switching to ${backend}`, async () => {
      await useBackend(backend);
      expect(await translateOnPage(SENTENCE)).toBe(expected);
    });
  }

  for (const backend of ['wasm', 'cpu']) {
    it(`keeps painting while translating a long sentence without the cache on ${backend} (longest frame gap < 100 ms), and Stop stops within one step`, async () => {
      await useBackend(backend);
      // the most work per step the page offers: 8 beams, every step recomputing the whole prefix
      await page.uncheck('#use-cache');
      await page.fill('#beams', '8');
      await page.fill('#max-length', '200');
      await page.fill('#source', `${LONG} ${LONG} ${LONG}`);
      // frame gaps on the main thread, from requestAnimationFrame timestamps
      await page.evaluate(() => {
        const w = window as unknown as { gaps: number[]; framing: boolean };
        w.gaps = [];
        w.framing = true;
        let last = performance.now();
        const frame = (t: number) => {
          w.gaps.push(t - last);
          last = t;
          if (w.framing) requestAnimationFrame(frame);
        };
        requestAnimationFrame(frame);
      });
      await page.click('#translate');
      await page.waitForFunction(() => (document.getElementById('status-line')!.textContent ?? '').startsWith('best of 8 beams'), undefined, { timeout: 120_000 });
      await page.waitForTimeout(300);
      await page.click('#stop', { timeout: 10_000 });
      await page.waitForFunction(() => document.body.dataset.translating === undefined, undefined, { timeout: 180_000 });
      const gaps = await page.evaluate(() => {
        const w = window as unknown as { gaps: number[]; framing: boolean };
        w.framing = false;
        return w.gaps.slice(1);
      });
      expect(gaps.length).toBeGreaterThan(20);
      expect(Math.max(...gaps), `longest frame gap of ${gaps.length} frames`).toBeLessThan(100);
      expect(Number(await page.getAttribute('body', 'data-tokens-after-stop')), 'tokens after Stop').toBeLessThanOrEqual(1);
      expect(await page.textContent('#status-line')).toBe('stopped');
      expect(await page.textContent('#tps')).toBe('–'); // figures reset after Stop
      await page.check('#use-cache');
      await page.fill('#beams', '1');
      await page.fill('#max-length', '64');
    });
  }

  it('beam search shows the best hypothesis as it changes, then the n-best list with scores', async () => {
    await useBackend('wasm');
    await page.fill('#beams', '4');
    await page.evaluate(() => {
      const w = window as unknown as { statuses: string[] };
      w.statuses = [];
      new MutationObserver(() => w.statuses.push(document.getElementById('status-line')!.textContent ?? '')).observe(document.getElementById('status-line')!, { childList: true, characterData: true, subtree: true });
    });
    await translateOnPage(SENTENCE);
    expect(await page.locator('#nbest li').count()).toBe(4);
    const statuses = await page.evaluate(() => (window as unknown as { statuses: string[] }).statuses);
    expect(statuses.some((s) => s.startsWith('best of 4 beams so far'))).toBe(true);
    await page.fill('#beams', '1');
  });

  it('keys: Ctrl+Enter translates, Esc stops; typing translates by itself (debounced)', async () => {
    await page.fill('#source', SENTENCE);
    await page.locator('#source').press('Control+Enter');
    await finished(page);
    expect((await page.textContent('#target'))!.trim()).toBe(expected);
    await page.check('#as-you-type');
    await page.locator('#source').fill('');
    await page.locator('#source').pressSequentially('Good morning.', { delay: 30 });
    await page.waitForFunction(() => (document.getElementById('target')!.textContent ?? '').length > 0 && document.body.dataset.translating === undefined, undefined, { timeout: 180_000 });
    await page.uncheck('#as-you-type');
    await page.fill('#max-length', '200');
    await page.uncheck('#use-cache');
    await page.fill('#source', LONG);
    await page.click('#translate');
    await page.waitForFunction(() => (document.getElementById('target')!.textContent ?? '').length > 0, undefined, { timeout: 180_000 });
    await page.keyboard.press('Escape');
    await page.waitForFunction(() => document.body.dataset.translating === undefined, undefined, { timeout: 180_000 });
    expect(await page.textContent('#status-line')).toBe('stopped');
    await page.check('#use-cache');
    await page.fill('#max-length', '64');
  });

  // one retry: on a loaded 2-core machine the network error was twice not shown within the wait (cause unknown; a
  // failure prints what the page showed)
  it('errors name the cause (bad format, network), and the previous model still translates', { retry: 1 }, async () => {
    // the worker answers in order: let an earlier run finish first (a loaded 2-core machine is slow)
    await page.waitForFunction(() => document.body.dataset.translating === undefined && !(document.getElementById('load-url') as HTMLButtonElement).disabled, undefined, { timeout: 180_000 });
    await page.setInputFiles('#model-files', [
      { name: 'config.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify({ model_type: 'marian', d_model: 16, vocab_size: 10 })) },
      { name: 'model.safetensors', mimeType: 'application/octet-stream', buffer: Buffer.from('this is not a safetensors file at all') },
    ]);
    await page.waitForFunction(() => /not a model kvt can read/.test(document.getElementById('error')!.textContent ?? ''), undefined, { timeout: 180_000 });
    expect(await page.textContent('#error')).toMatch(/not a model kvt can read.*previous model/);
    await page.fill('#model-url', 'http://127.0.0.1:9/model/');
    expect(await page.inputValue('#model-url')).toBe('http://127.0.0.1:9/model/');
    await page.click('#load-url');
    await page
      .waitForFunction(() => /Network error/.test(document.getElementById('error')!.textContent ?? ''), undefined, { timeout: 60_000 })
      .catch(async (e: unknown) => {
        throw new Error(`${String(e)}; the page shows: ${await page.evaluate(() => JSON.stringify({ data: document.body.dataset, text: document.body.innerText.slice(0, 1500), disabled: [...document.querySelectorAll('button:disabled')].map((b) => b.id) }))}`);
      });
    expect(await translateOnPage(SENTENCE)).toBe(expected);
  });

  it('a reload reads the model from the browser cache: no request for model files, and it translates', async () => {
    const second = await context.newPage();
    const modelRequests: string[] = [];
    second.on('request', (r) => r.url().includes('/models/en-es') && modelRequests.push(r.url()));
    await open(second);
    expect(modelRequests, 'model file requests on the second load').toEqual([]);
    await second.uncheck('#as-you-type');
    await second.selectOption('#backend', 'wasm');
    await second.waitForFunction(() => document.getElementById('backend-status')!.textContent === 'active: wasm' && !(document.getElementById('translate') as HTMLButtonElement).disabled, undefined, { timeout: 180_000 });
    expect(await translateOnPage(SENTENCE, second)).toBe(expected);
    expect(modelRequests).toEqual([]);
    expect(await second.textContent('#cache-info')).toMatch(/keeps \d+ model files/);
    await second.close();
  });

  it('offers the default model with q8_0 weights (loaded first) and fp16: each downloads its own files and translates', async () => {
    expect(await page.textContent('#model-name')).toMatch(/q8_0/);
    const requests: string[] = [];
    const onRequest = (r: { url(): string }) => r.url().includes('/models/en-es/') && requests.push(r.url());
    page.on('request', onRequest);
    await page.selectOption('#default-weights', 'fp16');
    await page.click('#load-default');
    await page.waitForFunction(() => /fp16/.test(document.getElementById('model-name')!.textContent ?? '') && !(document.getElementById('translate') as HTMLButtonElement).disabled, undefined, { timeout: 180_000 });
    page.off('request', onRequest);
    expect(requests.some((u) => u.endsWith('/model.safetensors'))).toBe(true);
    expect(await translateOnPage(SENTENCE)).toBe(expectedFp16);
  });

  it('fits a 390 px wide screen (no horizontal scrolling)', async () => {
    const phone = await context.newPage();
    await phone.setViewportSize({ width: 390, height: 844 });
    await open(phone);
    const width = await phone.evaluate(() => document.documentElement.scrollWidth);
    expect(width).toBeLessThanOrEqual(390);
    await phone.close();
  });
});
