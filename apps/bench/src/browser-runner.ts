/**
 * Runs benchmark specs in headless Chromium (Debian's package) through playwright-core: serves the bundled harness,
 * tfjs's .wasm files and the fixtures on 127.0.0.1, then calls the page's `kvtBench`.
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunRecord, RunSpec } from './measure.js';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

export function chromiumPath(): string | null {
  for (const p of [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser']) if (p && existsSync(p)) return p;
  return null;
}

const PAGE = '<!doctype html><meta charset="utf-8"><title>kvt bench</title><script type="module" src="/bench.js"></script>';
const TYPES: Record<string, string> = { '.js': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };

export async function runInBrowser(
  specs: RunSpec[],
  fixtures: string,
  tick: (s: RunSpec) => void,
): Promise<{ records: RunRecord[]; version: string | null }> {
  const exe = chromiumPath();
  if (!exe) throw new Error('No Chromium found (apt-get install chromium, or set CHROMIUM_PATH); browser backends need it.');
  const bundle = join(here, 'browser', 'bench.js');
  if (!existsSync(bundle)) throw new Error(`${bundle} is missing: run pnpm --filter bench build`);
  const roots: Record<string, string> = {
    '/wasm/': dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm')),
    '/fixtures/': fixtures,
  };
  const server = createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0]!);
    let file: string | undefined;
    if (path === '/' || path === '/index.html') return void res.writeHead(200, { 'Content-Type': 'text/html' }).end(PAGE);
    if (path === '/bench.js') file = bundle;
    for (const [prefix, root] of Object.entries(roots)) if (path.startsWith(prefix)) file = normalize(join(root, path.slice(prefix.length)));
    if (!file || !existsSync(file) || !statSync(file).isFile()) return void res.writeHead(404).end();
    res.writeHead(200, { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream', 'Content-Length': statSync(file).size });
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/`;
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: exe,
    args: ['--no-sandbox', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic', '--enable-unsafe-webgpu', '--enable-precise-memory-info'],
  });
  try {
    const page = await browser.newPage();
    let done = 0;
    await page.exposeFunction('kvtBenchProgress', (n: number) => {
      while (done < n) tick(specs[done++]!);
    });
    await page.goto(base);
    await page.waitForFunction(() => typeof window.kvtBench === 'function', undefined, { timeout: 60_000 });
    const records = await page.evaluate(([s, b]) => window.kvtBench(s, b), [specs, base] as const);
    return { records, version: `Chromium ${browser.version()}` };
  } finally {
    await browser.close();
    server.close();
  }
}
