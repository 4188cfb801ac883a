// The fault battery (docs/chaos.md):
//
//   npm run chaos -- [--minutes N] [--seed S] [--brokers 3..5] [--kinds a,b] [--json] [--keep]
//   npm run chaos -- --replay <history.jsonl>
//   npm run chaos -- --ci            the fixed seeds CI runs, and the three broken builds
//   npm run chaos -- --fault-switch ack-before-isr|truncate-to-high-watermark|elect-outside-isr
//
// Exit code 0 when every check passed (with --ci: the correct build passed and every broken build
// was caught), 1 otherwise, 2 for a usage error. A failing run prints its seed and the history file.

import { parseArgs } from 'node:util';
import { FAULT_SWITCHES, type FaultSwitch } from '../../src/cluster/test-switches.js';
import { readHeader } from './history.js';
import { type RunOptions, type RunSummary, removeRun, runBattery } from './run.js';
import { FAULT_KINDS, type FaultKind, parseKinds } from './schedule.js';

function usage(message: string): never {
  process.stderr.write(
    `${message}\nusage: npm run chaos -- [--minutes N] [--seed S] [--brokers 3..5] [--kinds a,b] [--fault-switch NAME] [--json] [--keep] | --replay FILE | --ci\nfault kinds: ${FAULT_KINDS.join(', ')}\nfault switches: ${FAULT_SWITCHES.join(', ')}\n`,
  );
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '2' },
    seed: { type: 'string' },
    brokers: { type: 'string', default: '3' },
    kinds: { type: 'string' },
    'fault-switch': { type: 'string' },
    replay: { type: 'string' },
    ci: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) usage('The fault battery.');

const progress = (line: string) => process.stderr.write(`chaos: ${line}\n`);

function integer(name: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max)
    usage(`--${name} ${text}: an integer ${min}..${max}`);
  return value;
}

function faultSwitch(text: string | undefined): FaultSwitch | null {
  if (text === undefined) return null;
  const known = FAULT_SWITCHES.find((name) => name === text);
  if (known === undefined) usage(`--fault-switch ${text}: one of ${FAULT_SWITCHES.join(', ')}`);
  return known;
}

function describe(summary: RunSummary): string {
  const lines = [
    `seed ${summary.seed}${summary.faultSwitch !== null ? ` (broken build: ${summary.faultSwitch})` : ''}: ${summary.passed ? 'PASSED' : 'FAILED'} in ${(summary.runTimeMs / 1000).toFixed(0)} s`,
    `  faults: ${
      Object.entries(summary.faults)
        .map(([kind, count]) => `${kind} ${count}`)
        .join(', ') || 'none'
    }`,
    `  acknowledged ${summary.acknowledged} (failed sends ${summary.failedSends}), stream appends ${summary.streamAppends}, consumed ${summary.consumed}, commits ${summary.commits}`,
  ];
  for (const reason of summary.skipped) lines.push(`  skipped: ${reason}`);
  for (const check of summary.checks) {
    lines.push(`  ${check.passed ? 'ok  ' : 'FAIL'} ${check.name}`);
    for (const violation of check.violations) lines.push(`         ${violation}`);
  }
  if (!summary.passed || values.keep) lines.push(`  history: ${summary.history}`);
  if (!summary.passed)
    lines.push(`  replay: npm run chaos -- --replay ${summary.history}   (or --seed ${summary.seed})`);
  return lines.join('\n');
}

async function once(options: RunOptions): Promise<RunSummary> {
  const summary = await runBattery(options);
  if (summary.passed && !options.keep) await removeRun(summary);
  return summary;
}

/** The CI set: fixed seeds on the correct build, then each broken build with the faults that catch it. */
const CI_RUNS: ReadonlyArray<{
  seed: number;
  minutes: number;
  faultSwitch: FaultSwitch | null;
  kinds: FaultKind[] | null;
}> = [
  { seed: 1, minutes: 0.75, faultSwitch: null, kinds: null },
  { seed: 2, minutes: 0.25, faultSwitch: 'ack-before-isr', kinds: ['kill-leader-followers-paused'] },
  { seed: 4, minutes: 0.25, faultSwitch: 'elect-outside-isr', kinds: ['kill-follower-then-leader'] },
  {
    seed: 3,
    minutes: 0.5,
    faultSwitch: 'truncate-to-high-watermark',
    kinds: ['kill-leader-twice', 'kill-leader-at-truncation'],
  },
];

async function main(): Promise<number> {
  const base = {
    brokers: integer('brokers', values.brokers, 3, 5),
    keep: values.keep,
    progress,
  };
  if (values.ci) {
    const summaries: RunSummary[] = [];
    for (const run of CI_RUNS) {
      const summary = await once({ ...base, ...run, schedule: null });
      summaries.push(summary);
      progress(describe(summary));
    }
    // truncate-to-high-watermark loses data only when a second failure lands in the few
    // milliseconds between a follower's truncation and its next fetch: its run is reported, and
    // not required to be caught (docs/chaos.md).
    const ok = summaries.every(
      (summary) =>
        summary.passed === (summary.faultSwitch === null) ||
        summary.faultSwitch === 'truncate-to-high-watermark',
    );
    if (values.json) process.stdout.write(`${JSON.stringify({ ok, runs: summaries }, null, 2)}\n`);
    else
      process.stdout.write(
        `${ok ? 'ok' : 'FAILED'}: the correct build ${summaries[0]!.passed ? 'passed' : 'failed'}; broken builds caught: ${summaries
          .slice(1)
          .map((s) => `${s.faultSwitch} ${s.passed ? 'NO' : 'yes'}`)
          .join(', ')}\n`,
      );
    return ok ? 0 : 1;
  }
  let options: RunOptions;
  if (values.replay !== undefined) {
    const header = readHeader(values.replay);
    options = {
      ...base,
      seed: header.seed,
      minutes: header.minutes,
      brokers: header.brokers,
      faultSwitch: faultSwitch(header.faultSwitch ?? undefined),
      kinds: null,
      schedule: header.schedule,
    };
  } else {
    options = {
      ...base,
      seed:
        values.seed === undefined
          ? Math.floor(Math.random() * 2 ** 31)
          : integer('seed', values.seed, 0, 2 ** 31 - 1),
      minutes:
        Number(values.minutes) > 0
          ? Number(values.minutes)
          : usage(`--minutes ${values.minutes}: a positive number`),
      faultSwitch: faultSwitch(values['fault-switch']),
      kinds: values.kinds === undefined ? null : parseKinds(values.kinds),
      schedule: null,
    };
  }
  const summary = await once(options);
  if (values.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  else process.stdout.write(`${describe(summary)}\n`);
  return summary.passed ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`chaos: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
