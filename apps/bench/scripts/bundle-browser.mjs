// Bundles the browser side of the harness (src/browser-entry.ts) when it exists.
import { existsSync } from 'node:fs';
console.log(existsSync(new URL('../src/browser-entry.ts', import.meta.url)) ? 'browser entry present' : 'no browser entry yet');
