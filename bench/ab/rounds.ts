// Two commits side by side: each commit's src/ exported with git archive into a temporary
// directory beside one node_modules (and the built native addons) shared by both, and measured in
// alternating rounds (A B, B A, A B, ...) so a drift of a shared machine hits both alike. Every
// measurement is a fresh process of bench/ab/measure.ts against one tree. Used by bench/ab/run.ts
// (one workload, medians and ratios) and bench/gate.ts (the regression gate).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type Side = 'A' | 'B';
export type Measurement = Record<string, number>;

export interface ExportedTrees {
  /** Each side's exported tree (it holds src/ and package.json). */
  dirs: Record<Side, string>;
  /** The commits as full hashes, resolved before export. */
  hashes: Record<Side, string>;
  remove(): void;
}

/** Resolves a commit name (HEAD~1, a branch, a hash) to its full hash; throws a clear error if unknown. */
export function resolveCommit(commit: string): string {
  const out = spawnSync('git', ['rev-parse', '--verify', '--quiet', `${commit}^{commit}`], {
    encoding: 'utf8',
  });
  if (out.status !== 0) throw new Error(`not a commit in this repository: ${commit}`);
  return out.stdout.trim();
}

/**
 * Whether two commits hold the same `src/` and `package.json`: what each side of a comparison runs
 * (exportTrees), so two such commits measure the same code and differ only by noise.
 */
export function sameMeasuredTrees(a: string, b: string): boolean {
  const object = (commit: string, path: string) =>
    spawnSync('git', ['rev-parse', '--verify', '--quiet', `${resolveCommit(commit)}:${path}`], {
      encoding: 'utf8',
    }).stdout.trim();
  return ['src', 'package.json'].every((path) => {
    const left = object(a, path);
    return left !== '' && left === object(b, path);
  });
}

export function exportTrees(commits: Record<Side, string>): ExportedTrees {
  const hashes = { A: resolveCommit(commits.A), B: resolveCommit(commits.B) };
  const root = mkdtempSync(join(tmpdir(), 'ms-ab-src-'));
  // Dependencies resolve from the exported trees through one node_modules beside them.
  symlinkSync(realpathSync('node_modules'), join(root, 'node_modules'));
  const dirs = { A: join(root, 'A'), B: join(root, 'B') };
  for (const side of ['A', 'B'] as const) {
    mkdirSync(dirs[side]);
    const archive = execFileSync('git', ['archive', hashes[side], 'src', 'package.json'], {
      maxBuffer: 1 << 28,
    });
    execFileSync('tar', ['-x', '-C', dirs[side]], { input: archive });
    // The native addons (CRC-32C, memory) are found two levels above src/protocol; both trees use
    // the current checkout's build, so the native code is the same on both sides.
    if (existsSync('native')) symlinkSync(realpathSync('native'), join(dirs[side], 'native'));
  }
  return { dirs, hashes, remove: () => rmSync(root, { recursive: true, force: true }) };
}

/** One measurement in a fresh process: bench/ab/measure.ts <dir> <test> [args], its last stdout line as JSON. */
export function measureOnce(dir: string, test: string, args: readonly string[] = []): Measurement {
  const child = spawnSync(process.execPath, ['--import', 'tsx', 'bench/ab/measure.ts', dir, test, ...args], {
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  const line = child.stdout.trim().split('\n').pop() ?? '';
  if (child.status !== 0 || !line.startsWith('{'))
    throw new Error(`measure ${test} in ${dir} failed (exit ${child.status}): ${child.stderr.slice(-2000)}`);
  return JSON.parse(line) as Measurement;
}

/** The order of the sides in a round: A B in even rounds, B A in odd ones. */
export function sidesOfRound(round: number): readonly Side[] {
  return round % 2 === 0 ? ['A', 'B'] : ['B', 'A'];
}

export interface RoundResults {
  A: Measurement[];
  B: Measurement[];
}

/**
 * Runs `rounds` alternating rounds of `measure`, calling `onResult` after each measurement.
 * `firstRound` numbers them on from earlier rounds of the same run, so the order keeps alternating.
 */
export function alternate(
  rounds: number,
  measure: (side: Side) => Measurement,
  onResult: (round: number, side: Side, result: Measurement, ms: number) => void,
  firstRound = 0,
): RoundResults {
  const results: RoundResults = { A: [], B: [] };
  for (let round = firstRound; round < firstRound + rounds; round++) {
    for (const side of sidesOfRound(round)) {
      const started = performance.now();
      const result = measure(side);
      results[side].push(result);
      onResult(round, side, result, performance.now() - started);
    }
  }
  return results;
}
