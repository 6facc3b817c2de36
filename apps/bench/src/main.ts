#!/usr/bin/env node
/**
 * `pnpm bench` / `pnpm kvt bench`: measures what the KV cache buys on every backend and writes a table, JSON,
 * a Markdown report and SVG charts.
 *
 * @example
 * ```sh
 * pnpm bench --quick
 * pnpm bench --models llama-15m --backends wasm,cpu --cache none,concat,backend --new-tokens 512 --out apps/bench/results/x
 * ```
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, platform, release } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import cliProgress from 'cli-progress';
import { Command, CommanderError, Option } from 'commander';
import * as tf from '@tensorflow/tfjs-core';
import { InvalidOptionError, KvtError, type CacheMode } from '@kvt/core';
import { WEIGHT_FORMATS } from '@kvt/kernels';
import type { WeightFormat } from '@kvt/loaders';
import { measure, modelLabel, type RunRecord, type RunSpec } from './measure.js';
import { MODELS, buildModelFor, modelSpec, type BuiltModel } from './model-zoo.js';
import { latencyChart, markdownReport, speedupChart, terminalTable, type Environment } from './report.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../../..');
const fixtures = process.env.KVT_FIXTURES ?? join(repo, '..', 'shared', 'fixtures');
const NODE_BACKENDS = ['cpu', 'wasm'];
const BROWSER_BACKENDS = ['webgl', 'webgpu', 'wasm-browser'];

interface Flags {
  models: string;
  backends: string;
  cache: string;
  promptTokens: number;
  newTokens: number;
  batch: number;
  beams: number;
  repetitions: number;
  warmup: number;
  out?: string;
  quick?: boolean;
  seed: number;
  noneNewTokens?: number;
  weights?: string;
}

const list = (s: string) => s.split(',').map((x) => x.trim()).filter(Boolean);
const int = (flag: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidOptionError(flag, v, 'a non-negative integer');
  return n;
};

function specs(f: Flags): RunSpec[] {
  const out: RunSpec[] = [];
  const formats = f.weights === undefined ? [undefined] : list(f.weights);
  for (const w of formats) if (w !== undefined && !(WEIGHT_FORMATS as readonly string[]).includes(w)) throw new InvalidOptionError('--weights', w, `some of ${WEIGHT_FORMATS.join(', ')}`);
  for (const model of list(f.models)) {
    if (!MODELS[model] && !model.includes('/')) modelSpec(model); // throws a typed error with the known names
    for (const weights of formats) {
      for (const backend of list(f.backends)) {
        if (![...NODE_BACKENDS, ...BROWSER_BACKENDS].includes(backend))
          throw new InvalidOptionError('--backends', backend, `some of ${[...NODE_BACKENDS, ...BROWSER_BACKENDS].join(', ')}`);
        for (const cacheMode of list(f.cache)) {
          if (!['none', 'concat', 'backend'].includes(cacheMode)) throw new InvalidOptionError('--cache', cacheMode, 'some of none, concat, backend');
          out.push({
            model, backend, cacheMode: cacheMode as CacheMode, promptTokens: f.promptTokens,
            // recomputing the prefix is quadratic: --none-new-tokens caps it (speedups are compared at equal lengths)
            newTokens: cacheMode === 'none' && f.noneNewTokens !== undefined ? Math.min(f.noneNewTokens, f.newTokens) : f.newTokens,
            batch: f.batch,
            beams: f.beams, warmupTokens: f.warmup, repetitions: f.repetitions, seed: f.seed,
            ...(weights ? { weights: weights as WeightFormat } : {}),
          });
        }
      }
    }
  }
  return out;
}

const buildModel = (name: string, weights?: WeightFormat): Promise<BuiltModel> => buildModelFor(name, (p) => join(fixtures, p), weights);

/** Runs the Node backends in this process, one model build per (model, backend). */
async function runNode(all: RunSpec[], tick: (s: RunSpec) => void): Promise<RunRecord[]> {
  const records: RunRecord[] = [];
  await import('@kvt/backend-cpu');
  await import('@kvt/backend-wasm');
  const groups = new Map<string, RunSpec[]>();
  for (const s of all) groups.set(`${modelLabel(s)}|${s.backend}`, [...(groups.get(`${modelLabel(s)}|${s.backend}`) ?? []), s]);
  for (const group of groups.values()) {
    const { model, backend, weights } = group[0]!;
    await tf.setBackend(backend);
    await tf.ready();
    const t0 = performance.now();
    const m = await buildModel(model, weights);
    const loadMs = performance.now() - t0;
    try {
      for (const s of group) {
        records.push(await measure(m, s, loadMs, () => process.memoryUsage().rss));
        tick(s);
      }
    } finally {
      m.model.dispose();
    }
  }
  return records;
}

/** Marks tokensMatch: every cache mode of a (model, backend, shape) must give the same tokens. */
export function checkTokens(records: RunRecord[]): number {
  let mismatches = 0;
  const key = (r: RunRecord) => `${modelLabel(r)}|${r.backend}|${r.promptTokens}|${r.batch}|${r.beams}`;
  const groups = new Map<string, RunRecord[]>();
  for (const r of records) groups.set(key(r), [...(groups.get(key(r)) ?? []), r]);
  for (const group of groups.values()) {
    // runs of different lengths (a capped 'none' run) are compared on their common prefix
    const n = Math.min(...group.map((r) => r.newTokens));
    const cut = (r: RunRecord) => JSON.stringify(r.tokens.map((t) => t.slice(0, n)));
    const ref = cut(group[0]!);
    for (const r of group) {
      r.tokensMatch = group.length > 1 ? cut(r) === ref : null;
      if (r.tokensMatch === false) mismatches++;
    }
  }
  return mismatches;
}

export async function runBench(argv: string[]): Promise<number> {
  const program = new Command('bench')
    .description('kvt benchmark harness: cache modes × backends × models')
    .option('--models <list>', `comma-separated: ${Object.keys(MODELS).join(', ')}, or a model path`, 'stories260k,llama-15m')
    .option('--backends <list>', 'comma-separated: cpu, wasm (Node); webgl, webgpu, wasm-browser (headless Chromium)', 'cpu,wasm,webgl')
    .option('--cache <list>', 'comma-separated cache modes: none, concat, backend', 'none,concat,backend')
    .option('--prompt-tokens <n>', 'prompt length', int('--prompt-tokens'), 16)
    .option('--new-tokens <n>', 'tokens to generate', int('--new-tokens'), 256)
    .option('--batch <n>', 'prompts per batch', int('--batch'), 1)
    .option('--beams <n>', 'beam search width', int('--beams'), 1)
    .option('--repetitions <n>', 'runs per measurement (the fastest is kept)', int('--repetitions'), 1)
    .option('--warmup <n>', 'tokens generated before measuring', int('--warmup'), 8)
    .option('--seed <n>', 'seed of the random prompts', int('--seed'), 1)
    .option('--none-new-tokens <n>', "cap the tokens of the 'none' mode (it recomputes the prefix: quadratic)", int('--none-new-tokens'))
    .option('--weights <list>', `comma-separated linear weight formats: ${WEIGHT_FORMATS.join(', ')} (default: as each model stores them)`)
    .option('--out <dir>', 'output folder (default apps/bench/out/<date>)')
    .addOption(new Option('--quick', 'a smoke run under a minute: stories260k, 48 tokens, cpu+wasm (+webgl when Chromium is there)'))
    .exitOverride();
  try {
    program.parse(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) return e.code === 'commander.helpDisplayed' ? 0 : 2;
    throw e;
  }
  const f = program.opts<Flags>();
  if (f.quick) {
    Object.assign(f, { models: 'stories260k', newTokens: 48, promptTokens: 8, warmup: 4, repetitions: 1 });
    if (program.getOptionValueSource('backends') === 'default') {
      const { chromiumPath } = await import('./browser-runner.js');
      f.backends = chromiumPath() ? 'cpu,wasm,webgl' : 'cpu,wasm';
    }
  }
  try {
    const all = specs(f);
    const started = new Date();
    const out = resolve(f.out ?? join(repo, 'apps/bench/out', started.toISOString().replace(/[:.]/g, '-')));
    const bar = new cliProgress.SingleBar(
      { format: 'bench [{bar}] {value}/{total} {run}', stream: process.stderr, hideCursor: true, noTTYOutput: false },
      cliProgress.Presets.shades_classic,
    );
    bar.start(all.length, 0, { run: '' });
    const tick = (s: RunSpec) => bar.increment({ run: `${modelLabel(s)} · ${s.backend} · ${s.cacheMode}` });
    const nodeSpecs = all.filter((s) => NODE_BACKENDS.includes(s.backend));
    const browserSpecs = all.filter((s) => !NODE_BACKENDS.includes(s.backend));
    const records = await runNode(nodeSpecs, tick);
    let chromium: string | null = null;
    if (browserSpecs.length > 0) {
      const { runInBrowser } = await import('./browser-runner.js');
      const browser = await runInBrowser(browserSpecs, fixtures, tick);
      records.push(...browser.records);
      chromium = browser.version;
    }
    bar.stop();
    const mismatches = checkTokens(records);
    const env: Environment = {
      date: started.toISOString(),
      command: `pnpm bench ${argv.join(' ')}`.trim(),
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
      node: process.version,
      chromium,
      platform: `${platform()} ${release()}`,
      backendFlags: { wasmSimd: true, wasmThreads: false, tfjs: tf.version_core },
    };
    mkdirSync(out, { recursive: true });
    const charts = [
      ['latency-vs-position.svg', await latencyChart(records)],
      ['speedup-vs-length.svg', await speedupChart(records)],
    ] as const;
    for (const [name, svg] of charts) writeFileSync(join(out, name), svg);
    writeFileSync(join(out, 'bench.json'), JSON.stringify({ environment: env, records }, null, 1));
    writeFileSync(join(out, 'report.md'), markdownReport(records, env, charts.map(([n]) => n)));
    process.stdout.write(terminalTable(records) + '\n');
    process.stdout.write(`wrote ${join(out, 'bench.json')}, report.md and charts\n`);
    if (mismatches > 0) {
      process.stderr.write(`\n!!! ${mismatches} run(s) generated different tokens than the other cache modes: the cache is not exact !!!\n`);
      return 1;
    }
    return 0;
  } catch (e) {
    if (KvtError.isInstance(e)) {
      process.stderr.write(`bench: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.exitCode = await runBench(process.argv.slice(2));
}
