// Runs every test: the Node suite (vitest), then the browser suite (vitest browser mode in Debian's headless
// Chromium) when Chromium is installed. KVT_TEST_REPORT=<dir> also writes each suite's JSON report there.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

const reportDir = process.env.KVT_TEST_REPORT;
if (reportDir) mkdirSync(reportDir, { recursive: true });
const extra = process.argv.slice(2);
const run = (name, config) => {
  const args = ['vitest', 'run', ...(config ? ['--config', config] : []), ...extra];
  if (reportDir) args.push('--reporter=default', '--reporter=json', `--outputFile.json=${join(reportDir, `${name}.json`)}`);
  console.log(`\n=== ${name} tests ===`);
  return spawnSync('npx', args, { stdio: 'inherit' }).status ?? 1;
};

let status = run('node');
const chromium = [process.env.CHROMIUM_PATH, '/usr/bin/chromium'].find((p) => p && existsSync(p));
if (chromium && process.env.KVT_SKIP_BROWSER_TESTS !== '1') status = run('browser', 'vitest.browser.config.ts') || status;
else console.log('\n=== browser tests skipped: no Chromium (scripts/setup.sh installs Debian\'s chromium as root) ===');
process.exit(status);
