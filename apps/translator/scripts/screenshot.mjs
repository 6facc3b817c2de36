// Takes docs/screenshot-1280.png and docs/screenshot-390.png of the built page in use (beam search with its n-best
// list). Run `pnpm --filter translator build` first; serves dist with `vite preview` on 127.0.0.1.
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { preview } from 'vite';

const here = dirname(fileURLToPath(import.meta.url));
const server = await preview({ root: resolve(here, '..'), preview: { host: '127.0.0.1', port: 0 } });
const url = server.resolvedUrls.local[0];
const executablePath = [process.env.CHROMIUM_PATH, '/usr/bin/chromium'].find((p) => p && existsSync(p));
const browser = await chromium.launch({
  executablePath,
  args: ['--no-sandbox', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic'],
});
for (const [width, height] of [[1280, 800], [390, 844]]) {
  const page = await browser.newPage({ viewport: { width, height } });
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 180_000 });
  await page.uncheck('#as-you-type');
  await page.fill('#source', 'I would like a cup of coffee, please.');
  await page.fill('#beams', '4');
  await page.click('#translate');
  await page.waitForFunction(() => document.body.dataset.translating === undefined && document.getElementById('nbest').children.length > 0, undefined, { timeout: 180_000 });
  await page.screenshot({ path: resolve(here, `../docs/screenshot-${width}.png`), fullPage: true });
  await page.close();
  console.log(`wrote docs/screenshot-${width}.png`);
}
await browser.close();
await server.close();
