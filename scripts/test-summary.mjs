// Sums vitest's JSON reports in a folder (plus extra named results) and prints "N passed, N failed" (the line CI
// reads). Usage: node scripts/test-summary.mjs <dir> <tests-exit-status> [name=status ...]
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const [dir, statusArg, ...extras] = process.argv.slice(2);
let passed = 0;
let failed = 0;
let skipped = 0;
if (dir && existsSync(dir)) {
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    const report = JSON.parse(readFileSync(join(dir, f), 'utf8'));
    passed += report.numPassedTests ?? 0;
    failed += report.numFailedTests ?? 0;
    skipped += (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
    // a file that failed to load counts as a failure even with no failed test inside it
    for (const suite of report.testResults ?? []) {
      for (const a of suite.assertionResults ?? []) if (a.status === 'failed') console.log(`failed: ${suite.name} > ${a.fullName ?? a.title}`);
      if (suite.status === 'failed' && (suite.assertionResults ?? []).every((a) => a.status !== 'failed')) {
        failed++;
        console.log(`failed to run: ${suite.name}: ${String(suite.message ?? '').split('\n')[0]}`);
      }
    }
  }
}
for (const e of extras) {
  const [name, s] = e.split('=');
  if (Number(s) === 0) passed++;
  else {
    failed++;
    console.log(`${name} failed (exit ${s})`);
  }
}
if (Number(statusArg) !== 0 && failed === 0) {
  // vitest fails a run with no failed test on an unhandled error or rejection (its output names it)
  failed = 1;
  console.log(`the tests exited ${statusArg} with no failed test: an unhandled error (see "Unhandled" in the output above)`);
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 ? 1 : 0);
