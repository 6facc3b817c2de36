#!/usr/bin/env node
/**
 * `pnpm bench:quality`: how far quantized weights move a model's logits from float32, on the seeded random-weight
 * shapes of the harness (teacher-forced on float32's greedy tokens). Prints a table and writes JSON.
 *
 * @example
 * ```sh
 * pnpm bench:quality --models llama-15m,llama-110m --weights q8_0,q4_0,q4_k --steps 32 --out apps/bench/results/x
 * ```
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import * as tf from '@tensorflow/tfjs-core';
import type { DecoderOnlyModel } from '@kvt/core';
import { logitsAgreement, type LogitsAgreement } from '@kvt/models';
import type { WeightFormat } from '@kvt/loaders';
import { modelSpec } from './model-zoo.js';

const program = new Command('bench:quality')
  .option('--models <list>', 'decoder-only models of the harness', 'llama-15m,llama-110m')
  .option('--weights <list>', 'formats to compare with fp32', 'q8_0,q4_0,q4_k')
  .option('--backend <name>', 'cpu or wasm', 'wasm')
  .option('--steps <n>', 'decode steps compared', '32')
  .option('--out <dir>', 'output folder', 'apps/bench/out/quality')
  .parse();
const o = program.opts<{ models: string; weights: string; backend: string; steps: string; out: string }>();
await import(o.backend === 'cpu' ? '@kvt/backend-cpu' : '@kvt/backend-wasm');
await tf.setBackend(o.backend);
const rows: ({ model: string; weights: string } & LogitsAgreement)[] = [];
for (const name of o.models.split(',')) {
  const spec = modelSpec(name);
  const fp32 = (await spec.build(() => '')).model as DecoderOnlyModel;
  for (const weights of o.weights.split(',') as WeightFormat[]) {
    const q = (await spec.build(() => '', weights)).model as DecoderOnlyModel;
    rows.push({ model: name, weights, ...(await logitsAgreement(fp32, q, [1, 300, 2000, 45, 17], Number(o.steps))) });
    q.dispose();
  }
  fp32.dispose();
}
console.log('| model | weights | median relative L2 error of the logits | max | same greedy token |');
console.log('|---|---|---|---|---|');
for (const r of rows)
  console.log(`| ${r.model} | ${r.weights} | ${(100 * r.medianRelativeError).toFixed(2)} % | ${(100 * r.maxRelativeError).toFixed(2)} % | ${(100 * r.top1Agreement).toFixed(0)} % of ${r.steps} |`);
const out = resolve(o.out);
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'quality.json'), JSON.stringify({ backend: o.backend, rows }, null, 1));
console.log(`wrote ${join(out, 'quality.json')}`);
