#!/usr/bin/env node
/**
 * `pnpm bench:kernels`: the speed of the backend's `KvtLinear` by weight layout and format, on the matrices of a
 * model shape: one input row over all of them (a decode step's weight streaming, in GB/s of weight bytes read) and
 * `--rows` input rows over one layer's (a prefill, in GFLOP/s). Seeded random weights; prints a table, writes JSON.
 *
 * @example
 * ```sh
 * pnpm bench:kernels --shape llama-110m --layouts fp32-columns,fp32,fp16,q8_0,q4_0,q4_k --out apps/bench/results/x
 * ```
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Command } from 'commander';
import * as tf from '@tensorflow/tfjs-core';
import { createRng } from '@kvt/core';
import { BLOCK, blockWeight, runLinear, type BlockFormat, type BlockWeight } from '@kvt/kernels';
import { quantizeRows } from '@kvt/models';

/** [in, out] of a layer's linear weights (fused q/k/v, o, fused gate/up, down) and the classifier. */
const SHAPES: Record<string, { layers: number; matrices: [number, number][]; classifier: [number, number] }> = {
  'llama-15m': { layers: 6, matrices: [[288, 864], [288, 288], [288, 1536], [768, 288]], classifier: [288, 32000] },
  'llama-110m': { layers: 12, matrices: [[768, 2304], [768, 768], [768, 4096], [2048, 768]], classifier: [768, 32000] },
};

const program = new Command('bench:kernels')
  .option('--shape <name>', `model shape (${Object.keys(SHAPES).join(', ')})`, 'llama-110m')
  .option('--layouts <list>', 'fp32-columns (tfjs tensor [in, out]), or rows: fp32, fp16, q8_0, q4_0, q4_k', 'fp32-columns,fp32,fp16,q8_0,q4_0,q4_k')
  .option('--backend <name>', 'cpu or wasm', 'wasm')
  .option('--repeats <n>', 'timed passes (median reported)', '9')
  .option('--rows <n>', 'input rows of the prefill measurement', '128')
  .option('--out <dir>', 'output folder', 'apps/bench/out/kernels')
  .parse();
const o = program.opts<{ shape: string; layouts: string; backend: string; repeats: string; rows: string; out: string }>();
const shape = SHAPES[o.shape];
if (!shape) throw new Error(`--shape: one of ${Object.keys(SHAPES).join(', ')}`);
await import(o.backend === 'cpu' ? '@kvt/backend-cpu' : '@kvt/backend-wasm');
await tf.setBackend(o.backend);
await tf.ready();

type Weight = tf.Tensor2D | BlockWeight;
const rng = createRng(7);
/** A weight [in, out] in `layout`, random in [-0.1, 0.1). */
function weight(inDim: number, outDim: number, layout: string): Weight {
  const values = Float32Array.from({ length: inDim * outDim }, () => (rng.next() - 0.5) * 0.2);
  if (layout === 'fp32-columns') return tf.tensor2d(values, [inDim, outDim]);
  const format = layout as BlockFormat;
  // values read as rows [out, in] (random either way)
  const bytes = format === 'fp32' ? new Uint8Array(values.buffer) : quantizeRows(values, outDim, inDim, format);
  return blockWeight(bytes, format, inDim, outDim);
}
const bytesOf = (w: Weight) => (w instanceof tf.Tensor ? w.size * 4 : w.w.size * 4);
const dispose = (w: Weight) => (w instanceof tf.Tensor ? w.dispose() : w.w.dispose());
function median(run: () => void): number {
  run(); // warm-up (compiles, first touch)
  const times = Array.from({ length: Number(o.repeats) }, () => {
    const t = performance.now();
    run();
    return performance.now() - t;
  });
  return times.sort((a, b) => a - b)[times.length >> 1]!;
}
/** Every product of one pass, run then read back once (the backend computes synchronously on wasm and cpu). */
function pass(x: Map<number, tf.Tensor2D>, ws: Weight[]): void {
  const ys = ws.map((w) => runLinear(x.get(w instanceof tf.Tensor ? w.shape[0] : w.inDim)!, w)!);
  ys[ys.length - 1]!.dataSync();
  tf.dispose(ys);
}

const m = Number(o.rows);
const rows: { layout: string; decodeMs: number; weightBytes: number; gbPerSecond: number; prefillMs: number; gflops: number }[] = [];
for (const layout of o.layouts.split(',')) {
  if (layout !== 'fp32-columns' && shape.matrices.some(([i]) => i % (layout === 'q4_k' ? 256 : BLOCK) !== 0)) continue;
  const all = [...Array.from({ length: shape.layers }, () => shape.matrices).flat(), shape.classifier];
  const ws = all.map(([i, out]) => weight(i, out, layout));
  const dims = [...new Set(all.map(([i]) => i))];
  const one = new Map(dims.map((d) => [d, tf.tensor2d(Float32Array.from({ length: d }, () => rng.next() - 0.5), [1, d])]));
  const many = new Map(dims.map((d) => [d, tf.tensor2d(Float32Array.from({ length: m * d }, () => rng.next() - 0.5), [m, d])]));
  const weightBytes = ws.reduce((s, w) => s + bytesOf(w), 0);
  const decodeMs = median(() => pass(one, ws));
  const layer = ws.slice(0, shape.matrices.length);
  const flops = shape.matrices.reduce((s, [i, out]) => s + 2 * m * i * out, 0);
  const prefillMs = median(() => pass(many, layer));
  rows.push({ layout, decodeMs, weightBytes, gbPerSecond: weightBytes / decodeMs / 1e6, prefillMs, gflops: flops / prefillMs / 1e6 });
  ws.forEach(dispose);
  tf.dispose([...one.values(), ...many.values()]);
}

console.log(`KvtLinear on ${o.backend}, ${o.shape} matrices (median of ${o.repeats})`);
console.log(`| layout | weight MB | 1 row over all (ms) | GB/s | ${m} rows over one layer (ms) | GFLOP/s |`);
console.log('|---|---|---|---|---|---|');
for (const r of rows)
  console.log(`| ${r.layout} | ${(r.weightBytes / 1e6).toFixed(1)} | ${r.decodeMs.toFixed(2)} | ${r.gbPerSecond.toFixed(1)} | ${r.prefillMs.toFixed(1)} | ${r.gflops.toFixed(1)} |`);
const out = resolve(o.out);
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'kernels.json'), JSON.stringify({ backend: o.backend, shape: o.shape, rows: m, results: rows }, null, 1));
console.log(`wrote ${join(out, 'kernels.json')}`);
