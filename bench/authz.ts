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
// Run: npx tsx bench/authz.ts [--rounds 5] [--big-messages 400000] [--small-messages 50000] [--aa] [--json]
import { mkdtemp, rm } from 'node:fs/promises';
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
  const entries: AclEntry[] = [entry('User:bench', PREFIX, 'write'), entry('User:bench', PREFIX, 'create')];
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

await main();
