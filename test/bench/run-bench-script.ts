// Runs one benchmark script end to end for a test: with BENCH_SMOKE=1 (bench/results/ stays as it
// is) and --json, and returns every result it printed (a script may print several, one per table).
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');

export interface BenchJson {
  benchmark: string;
  command: string;
  settings: Record<string, string | number>;
  rows: Array<Record<string, string | number>>;
}

/** `bench/<name>` with `args`; each JSON result it printed, in order. */
export async function runBenchScript(name: string, args: readonly string[]): Promise<BenchJson[]> {
  const { stdout } = await run(
    process.execPath,
    ['--import', 'tsx', join(root, 'bench', name), ...args, '--json'],
    { cwd: root, env: { ...process.env, BENCH_SMOKE: '1' } },
  );
  return stdout
    .trim()
    .split(/\n(?=\{\n {2}"benchmark")/)
    .map((text) => JSON.parse(text) as BenchJson);
}
