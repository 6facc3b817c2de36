// Reads vitest's JSON report and prints "N passed, N failed" (the line CI reads); exits non-zero on failure.
import { existsSync, readFileSync } from 'node:fs';

const [file, statusArg] = process.argv.slice(2);
const status = Number(statusArg ?? 0);
let passed = 0;
let failed = 0;
let skipped = 0;
if (file && existsSync(file)) {
  const report = JSON.parse(readFileSync(file, 'utf8'));
  passed = report.numPassedTests ?? 0;
  failed = (report.numFailedTests ?? 0) + (report.numFailedTestSuites ?? 0) - (report.numFailedTests ? 0 : 0);
  skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
  failed = report.numFailedTests ?? 0;
  // a suite that failed to load counts as a failure even with no failed test inside it
  for (const suite of report.testResults ?? []) if (suite.status === 'failed' && (suite.assertionResults ?? []).length === 0) failed++;
}
if (status !== 0 && failed === 0) failed = 1;
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || status !== 0 ? 1 : 0);
