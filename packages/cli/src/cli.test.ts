import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const bin = join(repo, 'packages/cli/dist/bin.js');
const fixtures = process.env.KVT_FIXTURES ?? join(repo, '..', 'shared', 'fixtures');
const stories = join(fixtures, 'stories260K', 'stories260K.bin');
const kvt = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 120_000 });
const tmp = mkdtempSync(join(tmpdir(), 'kvt-cli-'));
const kvtWithInput = (input: string, ...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 120_000, input });

describe.skipIf(!existsSync(bin) || !existsSync(stories))('the kvt command', () => {
  it('generate --json prints one JSON object on stdout with tokens, text, timing and cache', () => {
    const r = kvt('generate', '--model', stories, '--prompt', 'Once upon a time', '--max-new-tokens', '12', '--json', '--backend', 'cpu');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.promptTokens).toEqual([1, 403, 407, 261, 378]);
    expect(out.prefillTokens).toBe(5);
    expect(out.tokens).toHaveLength(12);
    expect(out.text.startsWith(', there was a little girl')).toBe(true);
    expect(out.timing.decodeMs).toHaveLength(11);
    expect(out.cache.length).toBe(16);
    expect(out.cache.bytes).toBeGreaterThan(0);
  });

  it('streams text without --json and reports speed on stderr', () => {
    const r = kvt('generate', '--model', stories, '--prompt', 'Once upon a time', '--max-new-tokens', '8');
    expect(r.status).toBe(0);
    expect(r.stdout.startsWith('Once upon a time, there was')).toBe(true);
    expect(r.stderr).toMatch(/tokens\/s/);
  });

  it('translate --num-return gives hypotheses with scores (CTranslate2 model)', () => {
    const r = kvt('translate', '--model', join(fixtures, 'aren-transliteration'), '--text', 'آ ت ز م و ن', '--beams', '2', '--num-return', '2', '--json');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.text).toBe('a t z m o n');
    expect(out.hypotheses).toHaveLength(2);
    expect(out.hypotheses[0].score).toBeGreaterThanOrEqual(out.hypotheses[1].score);
  });

  it('exits 2 with the typed error on bad usage or input, and 0 for --help', () => {
    const bad = kvt('generate', '--model', stories, '--top-p', '1.5');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--top-p/); // the flag, not the API name
    expect(kvt('generate', '--model', join(fixtures, 'nope.bin')).status).toBe(2);
    expect(kvt('generate').status).toBe(2); // missing --model
    expect(kvt('generate', '--model', stories, '--max-new-tokens', '4096').status).toBe(2); // past the positions
    expect(kvt('translate', '--help').status).toBe(0);
  });

  it('names the flag the user typed: a typo is an unknown option, API names become flags', () => {
    const typo = kvt('generate', '--modle', stories);
    expect(typo.status).toBe(2);
    expect(typo.stderr).toMatch(/unknown option '--modle'/);
    expect(typo.stderr).toMatch(/--model/);
    const beams = kvt('generate', '--model', stories, '--beams', '2', '--temperature', '0.5');
    expect(beams.status).toBe(2);
    expect(beams.stderr).toMatch(/--beams/);
    expect(beams.stderr).not.toMatch(/numBeams/);
  });

  it('rejects empty text, zero counts and two texts; --version; - reads standard input', () => {
    expect(kvt('translate', '').status).toBe(2);
    expect(kvt('translate', '--input', 'x.txt', '--batch-size', '0').status).toBe(2);
    const two = kvt('translate', 'a', '--text', 'b');
    expect(two.status).toBe(2);
    expect(two.stderr).toMatch(/not both/);
    expect(kvt('--version').stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    const piped = kvtWithInput('آ ت ز م و ن\n', 'translate', '--model', join(fixtures, 'aren-transliteration'), '-', '--beams', '1');
    expect(piped.status).toBe(0);
    expect(piped.stdout.trim()).toBe('a t z m o n');
    const missing = kvt('evaluate', '--dev', join(fixtures, 'no-such.tsv'));
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/--dev/);
  });

  it('generate --beams and --num-return: beam hypotheses, or samples sharing one prefill', () => {
    const beams = JSON.parse(kvt('generate', '--model', stories, '--prompt', 'Once upon a time', '--max-new-tokens', '8', '--beams', '3', '--num-return', '2', '--json').stdout);
    expect(beams.hypotheses).toHaveLength(2);
    expect(beams.config.numBeams).toBe(3);
    const samples = JSON.parse(kvt('generate', '--model', stories, '--prompt', 'Once', '--max-new-tokens', '8', '--temperature', '1', '--seed', '2', '--num-return', '3', '--json').stdout);
    expect(samples.hypotheses).toHaveLength(3);
    expect(samples.cache.length).toBe(2 + 7); // one prompt row prefilled, three rows then
  });

  it('chat: 10 turns, each prefilling only its new tokens; --save-state then --load-state continues as one session; a bad state exits 2', () => {
    const turns = ['Once upon a time', ' The dog', ' Then', ' She said', ' The sun', ' A bird', ' They ran', ' At night', ' Mom', ' The end'];
    const r = kvtWithInput(turns.join('\n') + '\n', 'chat', '--model', stories, '--max-new-tokens', '12', '--json', '--save-state', join(tmp, 'chat.kvts'));
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(10);
    let sessionTokens = 1; // BOS
    lines.forEach((l, i) => {
      const own = JSON.parse(kvt('generate', '--model', stories, '--prompt', turns[i]!, '--max-new-tokens', '1', '--json').stdout).promptTokens.length - 1; // without BOS
      // the turn's own tokens, plus BOS on the first turn or the previous turn's last token after it: never earlier turns
      expect(l.prefillTokens, `turn ${i}`).toBe(own + 1);
      sessionTokens += own + l.tokens.length;
      expect(l.sessionTokens).toBe(sessionTokens);
      expect(l.cache.length).toBe(sessionTokens - 1);
    });
    // one more turn from the saved state equals the 11th turn of one uninterrupted session
    const more = kvtWithInput(' Again\n', 'chat', '--model', stories, '--max-new-tokens', '12', '--json', '--load-state', join(tmp, 'chat.kvts'));
    const whole = kvtWithInput([...turns, ' Again'].join('\n') + '\n', 'chat', '--model', stories, '--max-new-tokens', '12', '--json');
    expect(JSON.parse(more.stdout).tokens).toEqual(JSON.parse(whole.stdout.trim().split('\n')[10]!).tokens);
    writeFileSync(join(tmp, 'bad.kvts'), 'not a state');
    const bad = kvtWithInput('x\n', 'chat', '--model', stories, '--load-state', join(tmp, 'bad.kvts'));
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/not a usable kvt cache state/);
  });

  it('generate --sliding-window runs past the model\'s 512 positions with the cache bounded by window + sinks', () => {
    const r = kvt('generate', '--model', stories, '--prompt', 'Once upon a time', '--max-new-tokens', '700', '--sliding-window', '128', '--sink-tokens', '4', '--json');
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.cache.capacity).toBeLessThanOrEqual(144); // 132 positions in whole blocks of 16 (wasm)
    expect(out.cache.length).toBeLessThanOrEqual(132);
    expect(out.promptTokens.length + out.tokens.length).toBeGreaterThan(132); // it slid
    expect(kvt('generate', '--model', stories, '--max-new-tokens', '700').status).toBe(2); // past the positions without one
    expect(kvt('generate', '--model', stories, '--sink-tokens', '4').status).toBe(2);
  });
});
