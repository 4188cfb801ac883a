// The regression gate: the key figures of a base commit (A, default HEAD~1) and the current commit
// (B, HEAD) measured side by side in alternating rounds of fresh processes (bench/ab/rounds.ts,
// workload `gate` of bench/ab/measure.ts: frame decode, TCP end-to-end P99 at 10,000 msg/s,
// `always` ack P99 at 2,000 msg/s, TCP produce and replay), then decided by bench/gate/rule.ts: a
// metric fails when its median B ÷ A is worse than its tolerance (the larger of the run's own
// noise and a floor) and every pair is worse, in the first rounds and again over as many more
// rounds with them. Exit 0 when nothing failed, 1 when something did, 2 on a usage or
// measurement error. Compares committed trees: uncommitted changes are not measured.
// Run: npm run bench:gate [-- --base <commit>] [--head <commit>] [--rounds 3] [--quick] [--json]
import {
  alternate,
  type ExportedTrees,
  exportTrees,
  type Measurement,
  measureOnce,
  type Side,
  sameMeasuredTrees,
} from './ab/rounds.js';
import { type ConfirmedDecision, decideConfirmed, GATE_METRICS, type MetricVerdict } from './gate/rule.js';

interface Options {
  base: string;
  head: string;
  rounds: number;
  quick: boolean;
  json: boolean;
}

function parseOptions(argv: readonly string[]): Options {
  const options: Options = { base: 'HEAD~1', head: 'HEAD', rounds: 3, quick: false, json: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = () => {
      const next = argv[++i];
      if (next === undefined || next.startsWith('--')) throw new Error(`${flag} needs a value`);
      return next;
    };
    if (flag === '--base') options.base = value();
    else if (flag === '--head') options.head = value();
    else if (flag === '--rounds') {
      options.rounds = Number(value());
      if (!Number.isInteger(options.rounds) || options.rounds < 2)
        throw new Error('--rounds must be an integer of at least 2 (the noise is measured between rounds)');
    } else if (flag === '--quick') options.quick = true;
    else if (flag === '--json') options.json = true;
    else throw new Error(`unknown option ${flag} (known: --base, --head, --rounds, --quick, --json)`);
  }
  return options;
}

const percent = (fraction: number) => `${(fraction * 100).toFixed(0)}%`;
/** Rates in millions (3.78M), latencies in whole µs with thousands separators (85,042). */
const figure = (value: number, name: string) =>
  name.endsWith('/s') ? `${(value / 1e6).toFixed(2)}M` : Math.round(value).toLocaleString('en-US');

function table(metrics: readonly MetricVerdict[]): string {
  const header = [
    'metric',
    'A median',
    'B median',
    'B ÷ A',
    'pairs B ÷ A',
    'noise A / B',
    'tolerance',
    'verdict',
  ];
  const rows = metrics.map((m) => [
    `${m.name} (${m.direction === 'higher-is-better' ? 'higher' : 'lower'} is better)`,
    figure(m.aMedian, m.name),
    figure(m.bMedian, m.name),
    m.ratio.toFixed(2),
    m.ratios.map((r) => r.toFixed(2)).join(' '),
    `${percent(m.noiseA)} / ${percent(m.noiseB)}`,
    `±${percent(m.tolerance)}`,
    m.verdict,
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (cells: readonly string[]) => cells.map((cell, c) => cell.padEnd(widths[c]!)).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

function main(): number {
  let options: Options;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`bench:gate: ${(error as Error).message}\n`);
    return 2;
  }
  const started = performance.now();
  const log = (text: string) => {
    if (!options.json) process.stdout.write(`${text}\n`);
    else process.stderr.write(`${text}\n`);
  };
  let trees: ExportedTrees;
  try {
    // The same code on both sides (a commit that changed only documents or tests): measuring it
    // twice can only compare noise with noise, so there is nothing to gate.
    if (sameMeasuredTrees(options.base, options.head)) {
      const why = `${options.base} and ${options.head} hold the same src/ and package.json: nothing to measure`;
      if (options.json)
        process.stdout.write(
          `${JSON.stringify({ base: { ref: options.base }, head: { ref: options.head }, passed: true, skipped: why })}\n`,
        );
      else log(`bench:gate: ${why}; PASS`);
      return 0;
    }
    trees = exportTrees({ A: options.base, B: options.head });
  } catch (error) {
    // An unknown commit, or a clone without the base's history (a depth-1 clone has no HEAD~1).
    process.stderr.write(`bench:gate: ${(error as Error).message}\n`);
    return 2;
  }
  const short = (side: Side) => trees.hashes[side].slice(0, 9);
  log(
    `bench:gate: A = ${options.base} (${short('A')}), B = ${options.head} (${short('B')}); ` +
      `${options.rounds} alternating rounds${options.quick ? ', quick' : ''}; 100-byte messages, ` +
      'durability interval (always for the ack P99), acks 1, one fresh process and broker per measurement',
  );
  let decision: ConfirmedDecision;
  const pairs: Array<{ A: Measurement; B: Measurement }> = [];
  try {
    let planned = options.rounds;
    const measureRounds = (firstRound: number) => {
      const results = alternate(
        options.rounds,
        (side) => measureOnce(trees.dirs[side], 'gate', options.quick ? ['--quick'] : []),
        (round, side, result, ms) => {
          const shown = GATE_METRICS.map(
            (m) => `${m.name} ${figure(result[m.name] ?? Number.NaN, m.name)}`,
          ).join(', ');
          log(`round ${round + 1}/${planned} ${side} (${(ms / 1000).toFixed(1)} s): ${shown}`);
        },
        firstRound,
      );
      const measured = results.A.map((a, i) => ({ A: a, B: results.B[i]! }));
      pairs.push(...measured);
      return measured;
    };
    decision = decideConfirmed(measureRounds(0), (suspected) => {
      planned = options.rounds * 2;
      log(
        `suspected: ${suspected.join(', ')}; ${options.rounds} more rounds to confirm ` +
          `(a failure must hold over all ${planned} pairs together)`,
      );
      return measureRounds(options.rounds);
    });
  } catch (error) {
    process.stderr.write(`bench:gate: ${(error as Error).message}\n`);
    return 2;
  } finally {
    trees.remove();
  }
  const seconds = Number(((performance.now() - started) / 1000).toFixed(1));
  if (options.json) {
    process.stdout.write(
      `${JSON.stringify({
        base: { ref: options.base, commit: trees.hashes.A },
        head: { ref: options.head, commit: trees.hashes.B },
        rounds: pairs,
        quick: options.quick,
        seconds,
        ...decision,
      })}\n`,
    );
  } else {
    log('');
    log(table(decision.metrics));
    log('');
    log(
      "noise: (max − min) ÷ median of a side's own rounds; tolerance: max(noise, floor: throughput 10%, P99 25%); " +
        'FAIL: median B ÷ A worse than the tolerance and every pair worse, in the first rounds and again over ' +
        'as many more with them (docs/performance.md, "Regression gate")',
    );
    const failed = decision.metrics.filter((m) => m.verdict === 'FAIL').map((m) => m.name);
    const confirmation =
      decision.suspected.length === 0
        ? ''
        : decision.passed
          ? ` after ${decision.decidedRounds} rounds (${decision.suspected.join(', ')} not confirmed)`
          : ` after ${decision.decidedRounds} rounds (confirmed)`;
    log(
      `${decision.passed ? 'PASS' : `FAIL (${failed.join(', ')})`}${confirmation} in ${seconds} s ` +
        `(${options.base} → ${options.head})`,
    );
  }
  return decision.passed ? 0 : 1;
}

process.exitCode = main();
