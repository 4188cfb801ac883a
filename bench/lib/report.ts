// Shared benchmark plumbing: latency histograms, the machine description, and the JSON result file
// every benchmark writes (bench/results/<name>.json), which scripts/bench-report.ts turns into
// docs/benchmarks.md. Schema: { benchmark, command, date, machine, settings, rows: [ {...} ] }.

import { execSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import * as hdr from 'hdr-histogram-js';

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  node: string;
  disk: string;
}

export function describeMachine(): Machine {
  let kernel = 'unknown';
  let disk = 'unknown';
  try {
    kernel = execSync('uname -r').toString().trim();
    disk = execSync('df -h --output=source,fstype . | tail -1').toString().trim().replace(/\s+/g, ' ');
  } catch {
    // Not Linux: keep "unknown".
  }
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel,
    node: process.version,
    disk,
  };
}

export type Row = Record<string, string | number | null>;

export interface BenchResult {
  benchmark: string;
  title: string;
  command: string;
  date: string;
  machine: Machine;
  settings: Record<string, string | number | boolean>;
  rows: Row[];
  notes?: string[];
}

/** Writes bench/results/<benchmark>.json, except in the CI smoke run (BENCH_SMOKE=1), which only checks the tools work. */
export function writeResult(result: Omit<BenchResult, 'date' | 'machine'>): BenchResult {
  const full: BenchResult = { ...result, date: new Date().toISOString(), machine: describeMachine() };
  if (process.env.BENCH_SMOKE === '1') return full;
  const dir = join(process.cwd(), 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${result.benchmark}.json`), `${JSON.stringify(full, null, 2)}\n`);
  return full;
}

/** Prints rows as an aligned table on stdout (or JSON with --json). */
export function printResult(result: BenchResult): void {
  if (process.argv.includes('--json')) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  process.stdout.write(`\n${result.title}\n`);
  const headers = Object.keys(result.rows[0] ?? {});
  const cells = result.rows.map((row) => headers.map((h) => String(row[h] ?? '-')));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  process.stdout.write(`${headers.map((h, i) => h.padEnd(widths[i]!)).join('  ')}\n`);
  for (const row of cells) process.stdout.write(`${row.map((c, i) => c.padEnd(widths[i]!)).join('  ')}\n`);
  for (const note of result.notes ?? []) process.stdout.write(`note: ${note}\n`);
}

export function progress(text: string): void {
  if (process.stderr.isTTY) process.stderr.write(`\r${text}\x1b[K`);
  else process.stderr.write(`${text}\n`);
}

/** A latency histogram in microseconds (1 µs .. 60 s, 3 significant digits). */
export function latencyHistogram(): hdr.Histogram {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
  });
}

export function percentiles(histogram: hdr.Histogram): Row {
  return {
    'p50 µs': histogram.getValueAtPercentile(50),
    'p99 µs': histogram.getValueAtPercentile(99),
    'p99.9 µs': histogram.getValueAtPercentile(99.9),
    'max µs': histogram.maxValue,
  };
}

/** `--name 1,2,3` as numbers, or `fallback` when the option is absent. */
export function argNumbers(name: string, fallback: readonly number[]): number[] {
  const index = process.argv.indexOf(`--${name}`);
  if (index < 0) return [...fallback];
  const values = (process.argv[index + 1] ?? '').split(',').map(Number);
  if (values.length === 0 || values.some((value) => !Number.isFinite(value)))
    throw new Error(`--${name} needs numbers separated by commas`);
  return values;
}

export function argNumber(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  if (index < 0) return fallback;
  const value = Number(process.argv[index + 1]);
  if (!Number.isFinite(value)) throw new Error(`--${name} needs a number`);
  return value;
}

/** `--name value`, one of `choices`, or `fallback` when the option is absent. */
export function argChoice<T extends string>(name: string, choices: readonly T[], fallback: T): T {
  const index = process.argv.indexOf(`--${name}`);
  if (index < 0) return fallback;
  const value = process.argv[index + 1] as T;
  if (!choices.includes(value)) throw new Error(`--${name} needs one of ${choices.join(', ')}`);
  return value;
}

export function rate(count: number, ms: number): number {
  return Math.round((count * 1000) / ms);
}
