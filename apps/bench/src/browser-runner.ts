/** Runs benchmark specs in headless Chromium (Debian's package) through playwright-core. Filled in below. */
import { existsSync } from 'node:fs';
import type { RunRecord, RunSpec } from './measure.js';

export function chromiumPath(): string | null {
  for (const p of [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser']) if (p && existsSync(p)) return p;
  return null;
}

export async function runInBrowser(_specs: RunSpec[], _fixtures: string, _tick: (s: RunSpec) => void): Promise<{ records: RunRecord[]; version: string | null }> {
  throw new Error('browser runs are not implemented yet');
}
