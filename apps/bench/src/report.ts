/** Turns run records into a terminal table, JSON, a Markdown report and SVG charts (vega-lite → vega → SVG). */
import Table from 'cli-table3';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { modelLabel, type RunRecord } from './measure.js';

export interface Environment {
  readonly date: string;
  readonly command: string;
  readonly cpu: string;
  readonly cores: number;
  readonly node: string;
  readonly chromium: string | null;
  readonly platform: string;
  readonly backendFlags: Record<string, unknown>;
}

const fmt = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '–');
const mb = (b: number | null) => (b === null ? '–' : `${(b / 1e6).toFixed(1)} MB`);

/** Time to generate the first n tokens: prefill + the first n − 1 decode steps. */
export function timeForTokens(r: RunRecord, n: number): number | null {
  if (n > r.newTokens) return null;
  return r.prefillMs + r.stepLatencyMs.slice(0, n - 1).reduce((a, b) => a + b, 0);
}

/**
 * Speedup of a record over the 'none' record of the same backend/model/shape, at n generated tokens (default: the
 * longest length both ran).
 */
export function speedup(records: RunRecord[], r: RunRecord, n?: number): number | null {
  const base = records.find((x) => x.cacheMode === 'none' && x.backend === r.backend && modelLabel(x) === modelLabel(r) && x.promptTokens === r.promptTokens && x.batch === r.batch && x.beams === r.beams);
  if (!base) return null;
  n ??= Math.min(base.newTokens, r.newTokens);
  const a = timeForTokens(base, n);
  const b = timeForTokens(r, n);
  return a !== null && b !== null && b > 0 ? a / b : null;
}

export function stepRatio(r: RunRecord, late: number, early: number): number | null {
  const at = (pos: number) => r.stepLatencyMs[pos - r.promptTokens];
  const a = at(late);
  const b = at(early);
  if (a === undefined || b === undefined) return null;
  // median of 9 steps around each position, so one slow step does not decide
  const around = (pos: number) => {
    const i = pos - r.promptTokens;
    const xs = r.stepLatencyMs.slice(Math.max(0, i - 4), i + 5).sort((x, y) => x - y);
    return xs[Math.floor(xs.length / 2)]!;
  };
  return around(late) / around(early);
}

/** K/V bytes a decode step writes, in kB (– where the cache does not count them, or there is no cache). */
function writtenLabel(r: RunRecord): string {
  const b = r.kvBytesWrittenPerStep;
  return b === null || b === undefined ? '–' : `${(b / 1024).toFixed(1)} kB`;
}

export function terminalTable(records: RunRecord[]): string {
  const t = new Table({
    head: ['backend', 'model', 'cache', 'prompt', 'new', 'prefill ms', 'TTFT ms', 'tok/s (med)', 'tok/s (p90)', 'cache', 'peak mem', 'shaders', 'kernels/step', 'K/V written/step', 'pipeline ms/step', 'speedup', 'tokens match'],
    style: { head: [], border: [] },
  });
  for (const r of records) {
    const s = speedup(records, r);
    t.push([
      r.backend, modelLabel(r), r.cacheMode, r.promptTokens, r.newTokens, fmt(r.prefillMs), fmt(r.timeToFirstTokenMs), fmt(r.tokensPerSecond), fmt(r.tokensPerSecondP90),
      mb(r.cacheBytes), mb(r.peakMemoryBytes), r.shaderPrograms ?? '–', fmt(r.kernelsPerDecodeStep ?? NaN, 0), writtenLabel(r), fmt(r.pipelineOverheadMs ?? NaN, 3), s === null ? '–' : `${fmt(s)}×`,
      r.tokensMatch === false ? '✗ MISMATCH' : r.tokensMatch ? '✓' : '–',
    ]);
  }
  return t.toString();
}

export function markdownReport(records: RunRecord[], env: Environment, charts: string[]): string {
  const lines = [
    '# kvt benchmark report',
    '',
    `- date: ${env.date}`,
    `- command: \`${env.command}\``,
    `- machine: ${env.cpu}, ${env.cores} cores, ${env.platform}; Node ${env.node}${env.chromium ? `; ${env.chromium}` : ''}`,
    '',
    '| backend | model | cache | prompt | new | prefill ms | TTFT ms | tok/s median | tok/s p90 | cache bytes | peak memory | shaders | kernels/step | K/V written/step | pipeline ms/step | speedup vs none | tokens match |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...records.map((r) => {
      const s = speedup(records, r);
      return `| ${r.backend} | ${modelLabel(r)} | ${r.cacheMode} | ${r.promptTokens} | ${r.newTokens} | ${fmt(r.prefillMs)} | ${fmt(r.timeToFirstTokenMs)} | ${fmt(r.tokensPerSecond)} | ${fmt(r.tokensPerSecondP90)} | ${mb(r.cacheBytes)} | ${mb(r.peakMemoryBytes)} | ${r.shaderPrograms ?? '–'} | ${fmt(r.kernelsPerDecodeStep ?? NaN, 0)} | ${writtenLabel(r)} | ${fmt(r.pipelineOverheadMs ?? NaN, 3)} | ${s === null ? '–' : fmt(s) + '×'} | ${r.tokensMatch === false ? '**MISMATCH**' : r.tokensMatch ? 'yes' : '–'} |`;
    }),
    '',
    '## Speedup over no cache at N generated tokens',
    '',
    '| backend | model | cache | 64 | 128 | 256 | 512 |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...records
      .filter((r) => r.cacheMode !== 'none')
      .map((r) => `| ${r.backend} | ${modelLabel(r)} | ${r.cacheMode} | ${[64, 128, 256, 512].map((n) => { const s = speedup(records, r, n); return s === null ? '–' : fmt(s) + '×'; }).join(' | ')} |`),
    '',
    '## Step latency growth',
    '',
    '| backend | model | cache | step at 1024 / 32 | step at 512 / 32 | step at the last position / 32 |',
    '| --- | --- | --- | --- | --- | --- |',
    ...records.map((r) => {
      const last = r.promptTokens + r.stepLatencyMs.length - 4;
      return `| ${r.backend} | ${modelLabel(r)} | ${r.cacheMode} | ${fmt(stepRatio(r, 1024, 32) ?? NaN, 2)} | ${fmt(stepRatio(r, 512, 32) ?? NaN, 2)} | ${fmt(stepRatio(r, last, 32) ?? NaN, 2)} (${last}) |`;
    }),
    '',
    ...charts.map((c) => `![${c}](${c})`),
    '',
  ];
  return lines.join('\n');
}

async function toSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  return view.toSVG();
}

/** Step latency against position, one line per backend × cache mode (per model). */
export async function latencyChart(records: RunRecord[]): Promise<string> {
  const values = records.flatMap((r) =>
    r.stepLatencyMs.map((ms, i) => ({ position: r.promptTokens + i + 1, ms, series: `${r.backend} · ${r.cacheMode}`, model: modelLabel(r) })),
  );
  return toSvg({
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: 'Decode step latency vs position',
    data: { values },
    facet: { row: { field: 'model', type: 'nominal' } },
    spec: {
      width: 640,
      height: 260,
      mark: { type: 'line', strokeWidth: 1.2 },
      encoding: {
        x: { field: 'position', type: 'quantitative', title: 'position' },
        y: { field: 'ms', type: 'quantitative', title: 'step (ms)', scale: { type: 'log' } },
        color: { field: 'series', type: 'nominal', title: 'backend · cache' },
      },
    },
    resolve: { scale: { y: 'independent' } },
  } as TopLevelSpec);
}

/** Speedup over no cache against generated length. */
export async function speedupChart(records: RunRecord[]): Promise<string> {
  const values = records
    .filter((r) => r.cacheMode !== 'none')
    .flatMap((r) =>
      [8, 16, 32, 64, 128, 256, 512, 1024]
        .map((n) => ({ n, s: speedup(records, r, n), series: `${r.backend} · ${r.cacheMode}`, model: modelLabel(r) }))
        .filter((p) => p.s !== null),
    );
  return toSvg({
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: 'Speedup over recomputing the prefix (no cache)',
    data: { values },
    facet: { row: { field: 'model', type: 'nominal' } },
    spec: {
      width: 640,
      height: 240,
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'n', type: 'quantitative', title: 'generated tokens', scale: { type: 'log', base: 2 } },
        y: { field: 's', type: 'quantitative', title: 'speedup (×)' },
        color: { field: 'series', type: 'nominal', title: 'backend · cache' },
      },
    },
    resolve: { scale: { y: 'independent' } },
  } as TopLevelSpec);
}
