import { readFileSync } from 'node:fs';
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
