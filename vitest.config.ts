import { defineConfig } from 'vitest/config';

// Workspace packages resolve to their TypeScript sources (the "source" export condition), so tests never run
// against a stale build.
const conditions = ['source', 'module', 'node', 'development|production'];
const exclude = ['**/node_modules/**', '**/*.browser.test.ts'];
// The translator's page tests time frames on the page's main thread: they run after the rest, alone on the machine
// (groupOrder), so the CPU-heavy tests (BLEU evaluations, fuzzing) do not starve the page.
const pageTests = 'apps/translator/test/**/*.test.ts';

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ['source'] } },
  test: {
    testTimeout: 300_000,
    hookTimeout: 120_000,
    pool: 'forks',
    projects: [
      {
        extends: true,
        test: { name: 'node', include: ['packages/*/src/**/*.test.ts', 'apps/*/src/**/*.test.ts', 'apps/*/test/**/*.test.ts'], exclude: [...exclude, pageTests], sequence: { groupOrder: 0 } },
      },
      { extends: true, test: { name: 'pages', include: [pageTests], exclude, sequence: { groupOrder: 1 } } },
    ],
  },
});
