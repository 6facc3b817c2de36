import { createReadStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { defineConfig, type Plugin } from 'vite';

const require = createRequire(import.meta.url);
// Static files the page needs that live in packages: the default model (fp16 and q8_0). (The .wasm files of @kvt/backend-wasm are
// found by the package itself: Vite emits them as assets.)
const mounts: Record<string, string> = {
  '/models/en-es/': join(dirname(require.resolve('@kvt/model-en-es/package.json')), 'model'),
  '/models/en-es-q8_0/': join(dirname(require.resolve('@kvt/model-en-es/package.json')), 'model-q8_0'),
};

/** Serves the mounts in dev and copies them into the build. */
function packageAssets(): Plugin {
  const wanted = (_dir: string, f: string) => !f.startsWith('.');
  return {
    name: 'kvt-package-assets',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const url = (req.url ?? '').split('?')[0]!;
        for (const [prefix, dir] of Object.entries(mounts)) {
          if (!url.startsWith(prefix)) continue;
          const file = join(dir, decodeURIComponent(url.slice(prefix.length)));
          if (!file.startsWith(dir) || !existsSync(file) || !statSync(file).isFile()) break;
          res.setHeader('Content-Length', statSync(file).size);
          res.setHeader('Content-Type', file.endsWith('.wasm') ? 'application/wasm' : file.endsWith('.json') ? 'application/json' : 'application/octet-stream');
          createReadStream(file).pipe(res);
          return;
        }
        next();
      });
    },
    generateBundle() {
      for (const [prefix, dir] of Object.entries(mounts)) {
        if (!existsSync(dir)) continue;
        for (const f of readdirSync(dir).filter((f) => wanted(dir, f)))
          this.emitFile({ type: 'asset', fileName: `${prefix.slice(1)}${f}`, source: readFileSync(join(dir, f)) });
      }
    },
  };
}

export default defineConfig({
  base: './',
  plugins: [packageAssets()],
  resolve: { conditions: ['source', 'browser', 'module', 'development|production'] },
  server: { host: '127.0.0.1' },
  build: { target: 'es2022', chunkSizeWarningLimit: 4000 },
  // the worker (kvt's runtime) is an ES module: the backend packages use top-level await
  worker: { format: 'es' },
});
