// Two commits side by side on one workload, in alternating rounds (A B, B A, ...) so drifts of a
// shared machine hit both alike; every measurement runs in a fresh process (bench/ab/measure.ts)
// against that commit's src/ tree, exported with git archive (bench/ab/rounds.ts). Prints each round
// and, per metric, the medians and the ratio B ÷ A. Nothing is written to bench/results: this is
// for deciding whether a change helps, on a noisy machine. bench/gate.ts runs a fixed set of these
// workloads and decides pass or fail.
// Run: npx tsx bench/ab/run.ts --a <commit> [--b HEAD] --test <embedded-produce|tcp-produce|
//      tcp-fixed|embedded-fixed|embedded-burst|embedded-batch|alloc-fixed|always-ack|frame-decode> [--rounds 4]
import { median } from '../gate/rule.js';
import { alternate, exportTrees, measureOnce } from './rounds.js';

const arg = (name: string, fallback?: string): string => {
  const at = process.argv.indexOf(`--${name}`);
  const value = at < 0 ? fallback : process.argv[at + 1];
  if (value === undefined) throw new Error(`--${name} is required`);
  return value;
};
const commits = { A: arg('a'), B: arg('b', 'HEAD') };
const test = arg('test');
const rounds = Number(arg('rounds', '4'));

const trees = exportTrees(commits);
let results: ReturnType<typeof alternate>;
try {
  results = alternate(
    rounds,
    (side) => measureOnce(trees.dirs[side], test),
    (round, side, result) =>
      process.stdout.write(`round ${round + 1} ${side} (${commits[side]}): ${JSON.stringify(result)}\n`),
  );
} finally {
  trees.remove();
}
for (const metric of Object.keys(results.A[0] ?? {})) {
  const a = median(results.A.map((r) => r[metric]!));
  const b = median(results.B.map((r) => r[metric]!));
  process.stdout.write(`${metric}: A median ${a}, B median ${b}, B ÷ A ${(b / a).toFixed(2)}\n`);
}
