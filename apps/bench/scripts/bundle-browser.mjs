// Bundles the browser side of the harness (src/browser-entry.ts) into dist/browser/bench.js with esbuild.
import { build } from 'esbuild';

await build({
  entryPoints: [new URL('../src/browser-entry.ts', import.meta.url).pathname],
  outfile: new URL('../dist/browser/bench.js', import.meta.url).pathname,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  conditions: ['source', 'browser', 'module'],
  external: ['node:*'],
  logLevel: 'warning',
});
