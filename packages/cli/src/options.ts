import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { InvalidOptionError } from '@kvt/core';

/** commander option parsers that throw typed errors (exit code 2) instead of printing their own. */
export const int = (flag: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new InvalidOptionError(flag, v, 'an integer');
  return n;
};
/** An integer ≥ 1 (counts: beams, batch sizes, limits). */
export const count = (flag: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidOptionError(flag, v, 'an integer ≥ 1');
  return n;
};
export const float = (flag: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new InvalidOptionError(flag, v, 'a number');
  return n;
};
/** Collects a repeatable string flag (`--stop a --stop b`). */
export const collect = (v: string, list: string[] = []) => [...list, v];

/** Drops undefined values, so options can be spread into generation requests under exactOptionalPropertyTypes. */
export function defined<T extends object>(o: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as never;
}

/** A text argument, or standard input when it is `-`. */
export function textOrStdin(value: string): string {
  return value === '-' ? readFileSync(0, 'utf8').replace(/\r?\n$/, '') : value;
}

/** The flag of each generation option, so an error about `numBeams` tells a command-line user `--beams`. */
const FLAGS: Readonly<Record<string, string>> = {
  numBeams: '--beams',
  numReturnSequences: '--num-return',
  stopStrings: '--stop',
  text: '--text',
  prompt: '--prompt',
  kvDtype: '--kv-dtype',
  slidingWindow: '--sliding-window',
  'slidingWindow.window': '--sliding-window',
  'slidingWindow.sinkTokens': '--sink-tokens',
};

/** The command-line flag for an API option name (`maxNewTokens` → `--max-new-tokens`). */
export function flagOf(option: string): string {
  if (option.startsWith('-')) return option;
  return FLAGS[option] ?? `--${option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** The sampling flags `kvt generate` and `kvt chat` share, as parsed. */
export interface SamplingFlags {
  maxNewTokens?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  repetitionPenalty?: number;
  seed?: number;
  stop?: string[];
}

/** Adds the sampling flags (`--temperature`, `--top-k`, …, `--stop`) to a command; `maxNewTokens` says its default. */
export function addSamplingFlags(command: Command, maxNewTokens: string, stop: string): Command {
  return command
    .option('--max-new-tokens <n>', maxNewTokens, count('--max-new-tokens'))
    .option('--temperature <t>', '0 = greedy (default); > 0 samples', float('--temperature'))
    .option('--top-k <k>', 'sample from the k most likely tokens', int('--top-k'))
    .option('--top-p <p>', 'nucleus sampling threshold in (0, 1]', float('--top-p'))
    .option('--min-p <p>', 'drop tokens below p × the top probability', float('--min-p'))
    .option('--repetition-penalty <r>', 'penalize repeated tokens (> 1)', float('--repetition-penalty'))
    .option('--seed <s>', 'sampling seed', int('--seed'))
    .option('--stop <text>', stop, collect);
}

/** The generation options of the sampling flags given (undefined ones left out). */
export function samplingOptions(o: SamplingFlags) {
  return defined({
    maxNewTokens: o.maxNewTokens,
    temperature: o.temperature,
    topK: o.topK,
    topP: o.topP,
    minP: o.minP,
    repetitionPenalty: o.repetitionPenalty,
    seed: o.seed,
    stopStrings: o.stop,
  });
}
