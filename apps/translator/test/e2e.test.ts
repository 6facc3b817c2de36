/**
 * End to end in a real browser: the built translator page served on 127.0.0.1, driven by playwright-core in Debian's
 * headless Chromium. The expected translation is computed here, in Node, with the same model through kvt's library.
 */
import '@kvt/backend-wasm';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { translate } from '@kvt/core';
import { loadModel } from '@kvt/loaders';
import { modelFiles } from '@kvt/model-en-es';
import { CHROMIUM_ARGS, chromiumPath, serveStatic } from './serve.js';

const dist = resolve(dirname(fileURLToPath(import.meta.url)), '../dist');
const SENTENCE = 'Where is the train station?';
const ready = existsSync(join(dist, 'index.html')) && !!chromiumPath() && existsSync(join(modelFiles.path, 'model.safetensors'));

describe.skipIf(!ready)('translator page in headless Chromium', () => {
  let browser: Browser;
  let page: Page;
  let close: () => void;
  let expected: string;

  beforeAll(async () => {
    const loaded = await loadModel(modelFiles.path);
    if (loaded.kind !== 'encoder-decoder') throw new Error('expected the translation model');
    const r = await translate(loaded.model, { text: SENTENCE, tokenizer: loaded.tokenizer!, maxNewTokens: 64 });
    expected = r.translations[0]!.text!;
    loaded.dispose();
    const { url, server } = await serveStatic(dist);
    close = () => server.close();
    browser = await chromium.launch({ executablePath: chromiumPath()!, args: CHROMIUM_ARGS, headless: true });
    page = await browser.newPage();
    page.on('pageerror', (e) => console.error('page error:', e.message));
    await page.goto(url);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 180_000 });
  });
  afterAll(async () => {
    await browser?.close();
    close?.();
  });

  const translateOnPage = async (text: string): Promise<string> => {
    await page.fill('#source', text);
    await page.click('#translate');
    await page.waitForFunction(() => !(document.getElementById('translate') as HTMLButtonElement).disabled && document.getElementById('target')!.textContent !== '', undefined, { timeout: 180_000 });
    return (await page.textContent('#target'))!.trim();
  };

  it('translates a typed sentence as kvt does in Node (greedy)', async () => {
    expect(expected.length).toBeGreaterThan(0);
    expect(await translateOnPage(SENTENCE)).toBe(expected);
  });

  for (const backend of ['wasm', 'cpu', 'webgl']) {
    it(`gives the same output after switching to ${backend}`, async () => {
      await page.selectOption('#backend', backend);
      await page.waitForFunction((b) => document.getElementById('backend-status')!.textContent === `active: ${b}` && !(document.getElementById('translate') as HTMLButtonElement).disabled, backend, { timeout: 180_000 });
      expect(await translateOnPage(SENTENCE)).toBe(expected);
    });
  }

  it('shows the n-best list with scores for beam search', async () => {
    await page.fill('#beams', '4');
    await translateOnPage(SENTENCE);
    expect(await page.locator('#nbest li').count()).toBe(4);
    await page.fill('#beams', '1');
  });

  it('reports a corrupt model file in the page, and the previous model still translates', async () => {
    await page.setInputFiles('#model-files', [
      { name: 'config.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify({ model_type: 'marian', d_model: 16, vocab_size: 10 })) },
      { name: 'model.safetensors', mimeType: 'application/octet-stream', buffer: Buffer.from('this is not a safetensors file at all') },
    ]);
    await page.waitForSelector('#error:not([hidden])', { timeout: 60_000 });
    expect(await page.textContent('#error')).toMatch(/Could not load .*previous model/);
    expect(await translateOnPage(SENTENCE)).toBe(expected);
  });
});
