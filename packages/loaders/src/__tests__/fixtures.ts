import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
/** The shared fixtures folder: KVT_FIXTURES, or ../shared/fixtures beside the repository. */
export const FIXTURES = process.env.KVT_FIXTURES ?? join(repo, '..', 'shared', 'fixtures');
export const fixture = (...parts: string[]) => join(FIXTURES, ...parts);
export const haveFixtures = existsSync(fixture('stories260K', 'stories260K.bin'));
