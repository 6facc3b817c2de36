/**
 * `kvt quantize`: a llama2.c checkpoint → a Q8_0 GGUF that generates what `--weights q8_0` generates; the default
 * English→Spanish model → its committed q8_0 folder, byte for byte, which loses at most 0.5 BLEU (beam 4, dev.tsv).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { modelFiles, quantizedModelFiles } from '@kvt/model-en-es';
import { defaultTestSet } from './commands/evaluate.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const bin = join(repo, 'packages/cli/dist/bin.js');
const fixtures = process.env.KVT_FIXTURES ?? join(repo, '..', 'shared', 'fixtures');
const stories = join(fixtures, 'stories260K', 'stories260K.bin');
const kvt = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 300_000 });
const tmp = mkdtempSync(join(tmpdir(), 'kvt-quantize-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe.skipIf(!existsSync(bin) || !existsSync(stories))('kvt quantize', () => {
  // q4_k: stories260K's rows (64 values) are not whole super-blocks, so writer and loader both fall back to q4_0
  for (const [weights, share] of [['q8_0', 0.45], ['q4_k', 0.35]] as const)
    it(`llama2.c → ${weights} GGUF with the tokenizer inside: generates what --weights ${weights} generates, at ≤ ${share} of the size`, () => {
      const out = join(tmp, `stories260K-${weights}.gguf`);
      const r = kvt('quantize', stories, out, '--weights', weights, '--json');
      expect(r.status, r.stderr).toBe(0);
      const report = JSON.parse(r.stdout);
      expect(report).toMatchObject({ format: 'gguf', weights, outputBytes: statSync(out).size });
      expect(report.outputBytes).toBeLessThan(share * report.inputBytes);
      const run = (model: string, ...extra: string[]) =>
        JSON.parse(kvt('generate', '--model', model, '--prompt', 'Once upon a time', '--max-new-tokens', '40', '--json', ...extra).stdout);
      const fromFile = run(out);
      expect(fromFile.promptTokens).toEqual([1, 403, 407, 261, 378]); // the GGUF's own tokenizer
      expect(fromFile.tokens).toEqual(run(stories, '--weights', weights).tokens);
    });

  it('refuses a bad format, a missing input and writing over the input, with the flag named', () => {
    expect(kvt('quantize', stories, join(tmp, 'x.gguf'), '--weights', 'q5_1').status).toBe(2);
    const missing = kvt('quantize', join(tmp, 'nope.bin'), join(tmp, 'x.gguf'), '--weights', 'q8_0');
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/does not exist/);
    const self = kvt('quantize', stories, stories, '--weights', 'q8_0');
    expect(self.status).toBe(2);
    expect(self.stderr).toMatch(/OUT/);
  });

  it.skipIf(!existsSync(defaultTestSet()))(
    'the English→Spanish model: reproduces the committed q8_0 folder byte for byte; q8_0 loses at most 0.5 BLEU (beam 4, dev.tsv)',
    () => {
      const out = join(tmp, 'en-es-q8_0');
      expect(kvt('quantize', modelFiles.path, out, '--weights', 'q8_0').status).toBe(0);
      expect(readFileSync(join(out, 'model.safetensors')).equals(readFileSync(join(quantizedModelFiles.path, 'model.safetensors')))).toBe(true);
      expect(statSync(join(out, 'model.safetensors')).size).toBeLessThan(0.6 * statSync(join(modelFiles.path, 'model.safetensors')).size);
      const bleu = (...args: string[]) => JSON.parse(kvt('evaluate', '--beams', '4', '--json', ...args).stdout).bleu as number;
      const full = bleu();
      const quantized = bleu('--model', quantizedModelFiles.path);
      expect(full).toBeGreaterThan(30);
      expect(quantized).toBeGreaterThanOrEqual(full - 0.5);
    },
    600_000,
  );
});
