// What the authorization check costs the broker: two brokers as child processes, both with SCRAM
// on and the same user; one with `authz.enabled` (the user allowed by prefix entries among 100 other
// entries, not a super-user, so every request goes through the ACL check and its per-principal
// cache), one without. Each is driven in turn with produce requests of 100-byte messages, in batches
// of 2,000 messages and of 10, and the broker's own CPU time (user + system of its process, from
// /proc: what process.cpuUsage() reports inside it) is read before and after each round. Rounds
// alternate which broker goes first, so drifts of a shared machine spread over both; the figures
// are medians of the rounds, and the overhead is (on − off) / off of the broker CPU per message, also
// taken round by round (paired) so that drifts between rounds cancel.
// With --aa both brokers run without authorization: the difference then is the noise floor.
// With --profile, one broker with authorization on runs under V8's CPU profiler (node --cpu-prof)
// while it takes produce requests of 2,000-message batches and then serves them back by fetch
// requests (each request checked); the figure is the share of the broker's busy CPU samples whose
// stack holds a function of the authorization check (src/security/authorizer*.ts,
// request-permissions.ts, acl-matcher.ts), with the sample counts: an on/off comparison of two
// brokers cannot resolve 1% on a shared machine, a count of samples can (to its sampling error).
// Run: npx tsx bench/authz.ts [--rounds 5] [--big-messages 400000] [--small-messages 50000] [--aa] [--json]
//      npx tsx bench/authz.ts --profile [--messages 2000000] [--json]
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { TcpTransport } from '../src/client/tcp-transport.js';
import type { AclEntry } from '../src/protocol/commands/acl-commands.js';
import { encodeRecordBatch } from '../src/protocol/record-batch.js';
import { FileAclStore } from '../src/security/acl-store.js';
import { deriveCredential } from '../src/security/credentials.js';
import { UserStore } from '../src/security/user-store.js';
import { type BrokerProcess, cpuSeconds, startBrokerProcess } from './lib/broker-process.js';
import { argNumber, printResult, progress, type Row, rate, writeResult } from './lib/report.js';

const rounds = argNumber('rounds', 5);
const bigMessages = argNumber('big-messages', 400_000);
const smallMessages = argNumber('small-messages', 50_000);
/** A/A run: the "on" broker runs without authorization too, to show the noise between two brokers. */
const sameBoth = process.argv.includes('--aa');
/** Profile mode: share of the broker's CPU samples inside the authorization check. */
const profileMode = process.argv.includes('--profile');
const profileMessages = argNumber('messages', 2_000_000);
/** Sampling interval of the profiler (µs): 10× V8's default, for more samples per message. */
const PROFILE_INTERVAL_US = 100;
const WINDOW = 8;
const PASSWORD = 'bench-password';
const PREFIX = 'authz-bench-';

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Per-round overhead (on / off − 1) in %: median and range over the rounds. */
function paired(on: ReadonlyArray<{ cpuUsPerMsg: number }>, off: ReadonlyArray<{ cpuUsPerMsg: number }>) {
  const ratios = on.map((r, i) => (r.cpuUsPerMsg / off[i]!.cpuUsPerMsg - 1) * 100);
  return { median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios) };
}

async function prepare(dataDir: string, acls: boolean): Promise<void> {
  const users = await UserStore.open(dataDir);
  await users.change({
    kind: 'add',
    name: 'bench',
    credentials: { 'SCRAM-SHA-256': deriveCredential('SCRAM-SHA-256', PASSWORD) },
  });
  if (!acls) return;
  const entry = (principal: string, name: string, operation: AclEntry['operation']): AclEntry => ({
    principal,
    resourceType: 'topic',
    resourceName: name,
    pattern: 'prefix',
    operation,
    permission: 'allow',
  });
  const entries: AclEntry[] = [
    entry('User:bench', PREFIX, 'write'),
    entry('User:bench', PREFIX, 'create'),
    entry('User:bench', PREFIX, 'read'),
  ];
  // Entries of other principals: the matcher looks through them when the cache is cold.
  for (let i = 0; i < 100; i++) entries.push(entry(`User:other${i}`, `team-${i}-`, 'all'));
  await (await FileAclStore.open(dataDir)).change({ kind: 'add', entries });
}

/** Produce requests of `perBatch` messages, WINDOW in flight, until `messages`: broker CPU µs per message. */
async function produceRound(
  transport: TcpTransport,
  broker: BrokerProcess,
  topic: string,
  perBatch: number,
  messages: number,
) {
  const batch = encodeRecordBatch(
    Array.from({ length: perBatch }, () => ({ value: Buffer.alloc(100, 0x61) })),
  );
  const requests = Math.ceil(messages / perBatch);
  const cpuBefore = await cpuSeconds(broker.pid);
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < requests) {
      next++;
      await transport.request('produce', { topic, partition: 0, acks: 1, batch }, { timeoutMs: 60_000 });
    }
  };
  await Promise.all(Array.from({ length: WINDOW }, worker));
  const ms = performance.now() - started;
  const cpu = (await cpuSeconds(broker.pid)) - cpuBefore;
  return { rate: rate(requests * perBatch, ms), cpuUsPerMsg: (cpu * 1e6) / (requests * perBatch) };
}

async function main(): Promise<void> {
  const cleanup: Array<() => Promise<void>> = [];
  try {
    const dirs = await Promise.all(
      ['on', 'off'].map((side) =>
        mkdtemp(join(process.env.BENCH_DIR ?? tmpdir(), `ms-bench-authz-${side}-`)),
      ),
    );
    for (const dir of dirs) cleanup.push(() => rm(dir, { recursive: true, force: true }));
    await prepare(dirs[0]!, true);
    await prepare(dirs[1]!, false);
    progress('starting two brokers (SCRAM on both; authorization on, off)');
    const env = { MEMORYSTREAMER_AUTH_MECHANISMS: 'SCRAM-SHA-256' };
    const onBroker = await startBrokerProcess({
      dataDir: dirs[0]!,
      env: sameBoth
        ? env
        : { ...env, MEMORYSTREAMER_AUTHZ_ENABLED: 'true', MEMORYSTREAMER_AUTHZ_SUPER_USERS: 'User:admin' },
    });
    cleanup.unshift(async () => void (await onBroker.stop()));
    const offBroker = await startBrokerProcess({ dataDir: dirs[1]!, env });
    cleanup.unshift(async () => void (await offBroker.stop()));
    const sides = [
      { label: 'authorization on', broker: onBroker },
      { label: 'authorization off', broker: offBroker },
    ].map((side) => ({
      ...side,
      transport: new TcpTransport({
        brokers: [{ host: '127.0.0.1', port: side.broker.port }],
        clientId: 'bench-authz',
        sasl: { mechanism: 'SCRAM-SHA-256', username: 'bench', password: PASSWORD },
      }),
    }));
    cleanup.unshift(async () => {
      for (const side of sides) await side.transport.close();
    });
    const shapes = [
      { perBatch: 2000, messages: bigMessages },
      { perBatch: 10, messages: smallMessages },
    ];
    const results = new Map<string, Array<{ rate: number; cpuUsPerMsg: number }>>();
    for (const side of sides) {
      await side.transport.request(
        'createTopic',
        { name: `${PREFIX}t`, partitions: 1 },
        { timeoutMs: 30_000 },
      );
      // Warm-up (JIT, first segment) on both, not counted.
      progress(`${side.label}: warm-up`);
      await produceRound(side.transport, side.broker, `${PREFIX}t`, 10, 5000);
      await produceRound(side.transport, side.broker, `${PREFIX}t`, 2000, 20_000);
    }
    for (let round = 0; round < rounds; round++) {
      for (const shape of shapes) {
        const order = round % 2 === 0 ? [0, 1] : [1, 0];
        for (const index of order) {
          const side = sides[index]!;
          progress(`${side.label}, ${shape.perBatch}-message batches: round ${round + 1}/${rounds}`);
          const result = await produceRound(
            side.transport,
            side.broker,
            `${PREFIX}t`,
            shape.perBatch,
            shape.messages,
          );
          const key = `${side.label}|${shape.perBatch}`;
          results.set(key, [...(results.get(key) ?? []), result]);
        }
      }
    }
    const rows: Row[] = [];
    for (const shape of shapes) {
      const on = results.get(`authorization on|${shape.perBatch}`)!;
      const off = results.get(`authorization off|${shape.perBatch}`)!;
      const cpuOn = median(on.map((r) => r.cpuUsPerMsg));
      const cpuOff = median(off.map((r) => r.cpuUsPerMsg));
      for (const [label, list, cpu] of [
        ['on', on, cpuOn],
        ['off', off, cpuOff],
      ] as const)
        rows.push({
          measurement: `${shape.perBatch}-message batches, authorization ${label}`,
          'msg/s': median(list.map((r) => r.rate)),
          'broker CPU µs/msg': Number(cpu.toFixed(3)),
          'spread CPU µs/msg': `${Math.min(...list.map((r) => r.cpuUsPerMsg)).toFixed(3)}..${Math.max(...list.map((r) => r.cpuUsPerMsg)).toFixed(3)}`,
          'overhead %': label === 'on' ? Number((((cpuOn - cpuOff) / cpuOff) * 100).toFixed(2)) : null,
          // The same round's two figures side by side: drifts between rounds cancel.
          'paired overhead % (median, spread)':
            label === 'on'
              ? `${paired(on, off).median.toFixed(2)} (${paired(on, off).min.toFixed(1)}..${paired(on, off).max.toFixed(1)})`
              : null,
        });
    }
    const result = writeResult({
      benchmark: sameBoth ? 'authz-aa' : 'authz',
      title: sameBoth
        ? 'Authorization benchmark, A/A: two brokers both without authorization (the noise floor)'
        : 'Authorization: broker CPU per produced message with the ACL check on vs off',
      command: `npx tsx bench/authz.ts --rounds ${rounds} --big-messages ${bigMessages} --small-messages ${smallMessages}${sameBoth ? ' --aa' : ''}`,
      settings: {
        transport: 'TCP loopback, broker child processes, SCRAM-SHA-256 on both',
        acls: 'authz on: the user allowed write and create by prefix, 100 entries of other principals; not a super-user',
        messageBytes: 100,
        batches: `2000 and 10 messages per produce request, ${WINDOW} requests in flight, one partition`,
        messagesPerRound: `${bigMessages} (2000-message batches), ${smallMessages} (10-message batches)`,
        acks: 1,
        durability: 'interval (default: fsync on the flush interval, not per request)',
        rounds,
        statistic: 'median of rounds of the broker process CPU (user + system) per message',
      },
      rows,
      notes: [
        `Load average of the machine at the end of the run: ${loadavg()
          .map((l) => l.toFixed(1))
          .join(' / ')} (1 / 5 / 15 min), from other work sharing it (2 cores, shared).`,
        'The brokers are separate processes driven in turn, their order alternating per round; an overhead inside the spread of the rounds is within the noise of the machine.',
      ],
    });
    printResult(result);
  } finally {
    for (const step of cleanup) await step().catch(() => undefined);
  }
}

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string }; children?: number[] }>;
  samples: number[];
  timeDeltas: number[];
  startTime: number;
}

/** The files whose functions make up the authorization check. */
const AUTHZ_FILE = /\/src\/security\/(authorizer[a-z-]*|request-permissions|acl-matcher)\.ts$/;

/**
 * Busy samples of the broker between `from` and `to` (µs, the monotonic clock V8's profiler shares
 * with process.hrtime on Linux), and those whose stack holds a function of the authorization check.
 */
function authzShare(profile: CpuProfile, from: number, to: number) {
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const inCheck = new Map<number, boolean>();
  const holdsCheck = (id: number): boolean => {
    const known = inCheck.get(id);
    if (known !== undefined) return known;
    const node = byId.get(id)!;
    const up = parent.get(id);
    const value = AUTHZ_FILE.test(node.callFrame.url) || (up !== undefined && holdsCheck(up));
    inCheck.set(id, value);
    return value;
  };
  let busy = 0;
  let check = 0;
  const functions = new Map<string, number>();
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i] ?? 0;
    if (at < from || at > to) continue;
    const node = byId.get(profile.samples[i]!)!;
    if (node.callFrame.functionName === '(idle)') continue;
    busy++;
    if (holdsCheck(node.id)) {
      check++;
      // The innermost frame of the check in this stack, to say which function it was.
      let id: number | undefined = node.id;
      while (id !== undefined && !AUTHZ_FILE.test(byId.get(id)!.callFrame.url)) id = parent.get(id);
      const frame = byId.get(id!)!.callFrame;
      const key = `${frame.functionName || '(anonymous)'} (${frame.url.replace(/^.*\/src\//, 'src/')})`;
      functions.set(key, (functions.get(key) ?? 0) + 1);
    }
  }
  return { busy, check, functions: [...functions].sort((a, b) => b[1] - a[1]) };
}

async function profileRun(): Promise<void> {
  const dataDir = await mkdtemp(join(process.env.BENCH_DIR ?? tmpdir(), 'ms-bench-authz-profile-'));
  const profileDir = join(process.cwd(), 'bench', 'results', 'profiles', 'authz');
  await rm(profileDir, { recursive: true, force: true });
  await mkdir(profileDir, { recursive: true });
  let produceRate = 0;
  let replayRate = 0;
  let windowFrom = 0;
  let windowTo = 0;
  try {
    await prepare(dataDir, true);
    progress('starting a broker with SCRAM and authorization on, under the CPU profiler');
    const broker = await startBrokerProcess({
      dataDir,
      nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-interval=${PROFILE_INTERVAL_US}`],
      env: {
        MEMORYSTREAMER_AUTH_MECHANISMS: 'SCRAM-SHA-256',
        MEMORYSTREAMER_AUTHZ_ENABLED: 'true',
        MEMORYSTREAMER_AUTHZ_SUPER_USERS: 'User:admin',
      },
    });
    const transport = new TcpTransport({
      brokers: [{ host: '127.0.0.1', port: broker.port }],
      clientId: 'bench-authz-profile',
      sasl: { mechanism: 'SCRAM-SHA-256', username: 'bench', password: PASSWORD },
    });
    try {
      const topic = `${PREFIX}profile`;
      await transport.request('createTopic', { name: topic, partitions: 1 }, { timeoutMs: 30_000 });
      progress('warm-up');
      await produceRound(transport, broker, topic, 2000, 40_000);
      windowFrom = Number(process.hrtime.bigint() / 1000n);
      progress(`producing ${profileMessages} messages in 2,000-message batches`);
      const produced = await produceRound(transport, broker, topic, 2000, profileMessages);
      produceRate = produced.rate;
      progress('replaying them by fetch requests');
      const started = performance.now();
      let offset = 0n;
      let fetched = 0;
      const end = BigInt(40_000 + Math.ceil(profileMessages / 2000) * 2000);
      while (offset < end) {
        const answer = await transport.request(
          'fetch',
          { topic, partition: 0, offset, maxBytes: 1 << 20, maxWaitMs: 0 },
          { timeoutMs: 60_000 },
        );
        if (answer.batches.length === 0) break;
        let at = 0;
        // Batch layout: base offset (i64 BE) at 0, length (i32 BE) at 8, records count (i32 BE) at 57.
        while (at + 61 <= answer.batches.length) {
          const base = answer.batches.readBigInt64BE(at);
          const length = answer.batches.readInt32BE(at + 8);
          const count = answer.batches.readInt32BE(at + 57);
          offset = base + BigInt(count);
          at += 12 + length;
        }
        fetched = Number(offset);
      }
      replayRate = rate(fetched, performance.now() - started);
      windowTo = Number(process.hrtime.bigint() / 1000n);
    } finally {
      await transport.close();
      await broker.stop();
    }
    const file = (await readdir(profileDir)).find((f) => f.endsWith('.cpuprofile'));
    if (file === undefined) throw new Error('the broker wrote no CPU profile');
    const profile = JSON.parse(await readFile(join(profileDir, file), 'utf8')) as CpuProfile;
    const { busy, check, functions } = authzShare(profile, windowFrom, windowTo);
    const share = busy === 0 ? 0 : (check / busy) * 100;
    // A binomial proportion's standard error, so the reader sees what the sample count resolves.
    const error = busy === 0 ? 0 : Math.sqrt(((share / 100) * (1 - share / 100)) / busy) * 100;
    const rows: Row[] = [
      {
        measurement: 'broker busy CPU samples in the produce + replay window',
        samples: busy,
        'share %': 100,
        '± (1 standard error) %': null,
      },
      {
        measurement: 'of which inside the authorization check',
        samples: check,
        'share %': Number(share.toFixed(3)),
        '± (1 standard error) %': Number(error.toFixed(3)),
      },
      ...functions.slice(0, 6).map(([name, samples]) => ({
        measurement: `  ${name}`,
        samples,
        'share %': Number(((samples / busy) * 100).toFixed(3)),
        '± (1 standard error) %': null,
      })),
    ];
    const result = writeResult({
      benchmark: 'authz-profile',
      title: "Authorization: share of the broker's CPU samples inside the ACL check (2,000-message batches)",
      command: `npx tsx bench/authz.ts --profile --messages ${profileMessages}`,
      settings: {
        transport: `TCP loopback, broker child process (node --cpu-prof, a sample every ${PROFILE_INTERVAL_US} µs), SCRAM-SHA-256`,
        acls: 'authz on: the user allowed write, create and read by prefix, 100 entries of other principals; not a super-user',
        messageBytes: 100,
        batches: `2000 messages per produce request, ${WINDOW} requests in flight, one partition; replay by FETCH requests of up to 1 MiB, one at a time`,
        messages: profileMessages,
        acks: 1,
        durability: 'interval (default: fsync on the flush interval, not per request)',
        'produce msg/s (profiled)': produceRate,
        'replay msg/s (profiled)': replayRate,
      },
      rows,
      notes: [
        'A sample counts as the check when any frame of its stack is a function of src/security/authorizer*.ts, request-permissions.ts or acl-matcher.ts (inclusive time). Idle samples and samples outside the workload window (start-up, warm-up) are left out.',
        `Load average of the machine at the end of the run: ${loadavg()
          .map((l) => l.toFixed(1))
          .join(' / ')} (1 / 5 / 15 min), from other work sharing it (2 cores, shared).`,
        'Profiling slows the broker; the msg/s in the settings are from the profiled run. Profile: bench/results/profiles/authz/*.cpuprofile.',
      ],
    });
    printResult(result);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

if (profileMode) await profileRun();
else await main();
