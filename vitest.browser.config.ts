import { defineConfig } from 'vitest/config';
import { playwright } from '@vitest/browser-playwright';
import { resolve } from 'node:path';

// The browser half of the test suite: the same conformance spec files, run in headless Chromium (Debian's package,
// driven by playwright) against pages served on 127.0.0.1. WebGL 2 and WebGPU run on SwiftShader there.
const fixtures = process.env.KVT_FIXTURES ?? resolve(import.meta.dirname, '../shared/fixtures');

export default defineConfig({
  resolve: { conditions: ['source', 'browser', 'module', 'development|production'] },
  server: { host: '127.0.0.1', fs: { allow: [import.meta.dirname, fixtures] } },
  define: { __KVT_FIXTURES__: JSON.stringify(fixtures) },
  test: {
    include: ['packages/*/src/**/*.browser.test.ts'],
    testTimeout: 600_000,
    hookTimeout: 300_000,
    browser: {
      enabled: true,
      headless: true,
      screenshotFailures: false,
      provider: playwright({
        launchOptions: {
          executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
          args: ['--no-sandbox', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic', '--enable-unsafe-webgpu'],
        },
      }),
      instances: [{ browser: 'chromium' }],
    },
  },
});
