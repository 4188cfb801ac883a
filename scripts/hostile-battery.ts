// The hostile-client battery: runs each attack class against a real broker process with small,
// explicit limits and checks memory, the good clients beside it, recovery and the read-back.
// docs/hostile-clients.md describes the attacks and the checks.
//
//   npx tsx scripts/hostile-battery.ts [--budget ci|long] [--only <attack>[,<attack>]] [--seed N]
//                                      [--json] [--keep-data] [--env KEY=VALUE]... [--nofile N]
//
// --env passes a broker setting (MEMORYSTREAMER_<SECTION>_<NAME>) on top of the battery's limits;
// --nofile sets the broker's descriptor limit (soft and hard; 1024 by default).
//
// Exit code 0 when every check of every attack passed, 1 otherwise (2 for a usage error).

import { mkdtemp } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  type AttackResult,
  BUDGETS,
  FIXED_OVERHEAD,
  RETURN_MARGIN,
  runAttack,
} from '../test/battery/attack-runner.js';
import {
  ATTACKS,
  attackNamed,
  type BatteryLimits,
  type BudgetName,
  LIMITS as DEFAULT_LIMITS,
} from '../test/battery/attacks.js';
import { killAllTracked, logTail } from '../test/battery/broker.js';
import { MiB } from '../test/battery/checks.js';
import { attackSeed } from '../test/battery/random.js';
import { formatAttack, formatSummary } from '../test/battery/report.js';

function usage(message: string): never {
  process.stderr.write(
    `${message}\nusage: npx tsx scripts/hostile-battery.ts [--budget ci|long] [--only a,b] [--seed N] [--json] [--keep-data] [--env KEY=VALUE] [--nofile N]\nattacks: ${ATTACKS.map((a) => a.name).join(', ')}\n`,
  );
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    budget: { type: 'string', default: 'ci' },
    only: { type: 'string' },
    seed: { type: 'string' },
    json: { type: 'boolean', default: false },
    'keep-data': { type: 'boolean', default: false },
    env: { type: 'string', multiple: true, default: [] },
    nofile: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) usage('The hostile-client battery.');
if (values.budget !== 'ci' && values.budget !== 'long') usage(`--budget ${values.budget}: ci or long`);
const budget = values.budget as BudgetName;
const selected =
  values.only === undefined
    ? ATTACKS
    : values.only.split(',').map((name) => attackNamed(name.trim()) ?? usage(`no attack named ${name}`));
const seed = values.seed !== undefined ? Number(values.seed) >>> 0 : (Math.random() * 0x100000000) >>> 0;
if (values.seed !== undefined && !/^\d+$/.test(values.seed))
  usage(`--seed ${values.seed}: a non-negative integer`);
const extraEnv: Record<string, string> = {};
for (const pair of values.env ?? []) {
  const at = pair.indexOf('=');
  if (at <= 0 || !pair.startsWith('MEMORYSTREAMER_'))
    usage(`--env ${pair}: MEMORYSTREAMER_<SECTION>_<NAME>=value`);
  extraEnv[pair.slice(0, at)] = pair.slice(at + 1);
}

if (values.nofile !== undefined && !/^\d+$/.test(values.nofile))
  usage(`--nofile ${values.nofile}: a number of descriptors`);
const LIMITS: BatteryLimits =
  values.nofile === undefined
    ? DEFAULT_LIMITS
    : { ...DEFAULT_LIMITS, nofileSoft: Number(values.nofile), nofileHard: Number(values.nofile) };

const progress = (line: string) =>
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
const settings = BUDGETS[budget];
const header = [
  `hostile-client battery: budget ${budget}, seed ${seed} (repeat with --seed ${seed}), ${cpus().length} CPUs, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, node ${process.version}`,
  `broker limits: global budget ${LIMITS.globalBudget / MiB} MiB, connection budget ${LIMITS.connectionBudget / MiB} MiB, max outbound ${LIMITS.maxOutbound / MiB} MiB, max payload ${LIMITS.maxPayloadBytes / MiB} MiB, connections ${LIMITS.maxConnections} (${LIMITS.maxConnectionsPerAddress} per address), handshake timeout ${LIMITS.handshakeTimeoutMs} ms, idle timeout ${LIMITS.idleTimeoutMs} ms, descriptors soft ${LIMITS.nofileSoft} / hard ${LIMITS.nofileHard}${
    Object.keys(extraEnv).length > 0
      ? `, plus ${Object.entries(extraEnv)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ')}`
      : ''
  }`,
  `rules: RSS peak <= idle RSS + global budget + ${FIXED_OVERHEAD / MiB} MiB fixed overhead; after the attack RSS back within ${RETURN_MARGIN / MiB} MiB of the pre-attack RSS within ${settings.recoveryMs / 1000} s; no good-client operation waits over ${settings.stallBoundMs} ms; a new client produces within ${settings.newClientBoundMs} ms; attack ${settings.attackMs / 1000} s after ${settings.beforeMs / 1000} s of good traffic at ${settings.producerRate} msg/s`,
].join('\n');

// Whatever ends the battery (a signal, an exception), the broker and attackers go with it.
process.on('exit', killAllTracked);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    progress(`${signal}: stopping the broker and attackers`);
    process.exit(130);
  });
}

const workDir = await mkdtemp(join(process.env.BATTERY_DIR ?? tmpdir(), 'ms-battery-'));
if (!values.json) process.stdout.write(`${header}\nwork directory (broker logs): ${workDir}\n`);
else progress(header.replaceAll('\n', '\n         '));

const results: AttackResult[] = [];
for (const attack of selected) {
  progress(`[${attack.name}] starting`);
  const result = await runAttack(attack, {
    budget,
    seed: attackSeed(seed, attack.name),
    workDir,
    extraEnv,
    limits: LIMITS,
    keepData: values['keep-data'] ?? false,
    progress,
  });
  results.push(result);
  progress(`[${attack.name}] ${result.pass ? 'PASS' : 'FAIL'} in ${result.figures.seconds} s`);
  if (!values.json)
    process.stdout.write(`${formatAttack(result, result.pass ? [] : await logTail(result.brokerLog))}\n`);
}

const pass = results.every((r) => r.pass);
if (values.json) {
  process.stdout.write(
    `${JSON.stringify({ budget, seed, pass, limits: LIMITS, rules: { fixedOverheadBytes: FIXED_OVERHEAD, returnMarginBytes: RETURN_MARGIN, ...settings }, results }, null, 2)}\n`,
  );
} else {
  process.stdout.write(
    `${formatSummary(results, `${pass ? 'PASS' : 'FAIL'}: ${results.filter((r) => r.pass).length} of ${results.length} attacks passed (seed ${seed})`)}\n`,
  );
}
process.exit(pass ? 0 : 1);
