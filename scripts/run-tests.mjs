// Runs every test (vitest: Node tests, and the browser tests when Chromium is present).
// KVT_TEST_REPORT=<file> also writes vitest's JSON report there.
import { spawnSync } from 'node:child_process';

const args = ['vitest', 'run', ...process.argv.slice(2)];
if (process.env.KVT_TEST_REPORT) {
  args.push('--reporter=default', '--reporter=json', `--outputFile.json=${process.env.KVT_TEST_REPORT}`);
}
const r = spawnSync('npx', args, { stdio: 'inherit' });
process.exit(r.status ?? 1);
