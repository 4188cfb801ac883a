// Two commits side by side on one workload, in alternating rounds (A B, B A, ...) so drifts of a
// shared machine hit both alike; every measurement runs in a fresh process (bench/ab/measure.ts)
// against that commit's src/ tree, exported with git archive. Prints each round and, per metric,
// the medians and the ratio B ÷ A. Nothing is written to bench/results: this is for deciding
// whether a change helps, on a noisy machine.
// Run: npx tsx bench/ab/run.ts --a <commit> [--b HEAD] --test <embedded-produce|tcp-produce|
//      tcp-fixed|embedded-fixed|alloc-fixed> [--rounds 4]
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const arg = (name: string, fallback?: string): string => {
  const at = process.argv.indexOf(`--${name}`);
  const value = at < 0 ? fallback : process.argv[at + 1];
  if (value === undefined) throw new Error(`--${name} is required`);
  return value;
};
const commits = { A: arg('a'), B: arg('b', 'HEAD') };
const test = arg('test');
const rounds = Number(arg('rounds', '4'));

const root = mkdtempSync(join(tmpdir(), 'ms-ab-src-'));
// Dependencies resolve from the exported trees through one node_modules beside them.
symlinkSync(realpathSync('node_modules'), join(root, 'node_modules'));
const dirs: Record<string, string> = {};
for (const [name, commit] of Object.entries(commits)) {
  dirs[name] = join(root, name);
  mkdirSync(dirs[name]!);
  const archive = execFileSync('git', ['archive', commit, 'src', 'package.json']);
  execFileSync('tar', ['-x', '-C', dirs[name]!], { input: archive });
}

const results: Record<string, Array<Record<string, number>>> = { A: [], B: [] };
try {
  for (let round = 0; round < rounds; round++) {
    for (const name of round % 2 === 0 ? ['A', 'B'] : ['B', 'A']) {
      const child = spawnSync(
        process.execPath,
        ['--import', 'tsx', 'bench/ab/measure.ts', dirs[name]!, test],
        {
          encoding: 'utf8',
          maxBuffer: 1 << 24,
        },
      );
      const line = child.stdout.trim().split('\n').pop() ?? '';
      if (child.status !== 0 || !line.startsWith('{'))
        throw new Error(`${name}: ${child.stderr.slice(-2000)}`);
      results[name]!.push(JSON.parse(line) as Record<string, number>);
      process.stdout.write(`round ${round + 1} ${name} (${commits[name as 'A' | 'B']}): ${line}\n`);
    }
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}
const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
};
for (const metric of Object.keys(results.A![0] ?? {})) {
  const a = median(results.A!.map((r) => r[metric]!));
  const b = median(results.B!.map((r) => r[metric]!));
  process.stdout.write(`${metric}: A median ${a}, B median ${b}, B ÷ A ${(b / a).toFixed(2)}\n`);
}
