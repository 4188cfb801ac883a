// Runs one hostile-client attack against a broker child process and reports the broker's RSS
// (peak while attacked, and after the attackers left), what a well-behaved producer and consumer
// beside it got done, and how long a new client then took to connect and produce.
//
//   npx tsx test/broker/server/helpers/measure-attack.ts <fetch|subscribe|half-frame|flood> [seconds]
//
// Settings go to the broker as MEMORYSTREAMER_* environment variables (e.g.
// MEMORYSTREAMER_SERVER_GLOBAL_BUDGET=256MiB); ATTACKERS overrides the number of connections.
import { readFileSync } from 'node:fs';
import { startBrokerProcess } from '../../../../bench/lib/broker-process.js';
import { connect } from '../../../../src/client/connect.js';
import {
  type Attack,
  connectionFlood,
  halfSentFrames,
  hugeCreditSubscriptions,
  pipelinedFetches,
} from './attacks.js';

const MiB = 1024 * 1024;
const kind = process.argv[2] ?? 'fetch';
const seconds = Number(process.argv[3] ?? 20);
const env: Record<string, string> = {};
for (const [name, value] of Object.entries(process.env))
  if (name.startsWith('MEMORYSTREAMER_SERVER_') && value !== undefined) env[name] = value;

function memory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) * 1024;
  return { rss: field('VmRSS'), peak: field('VmHWM') };
}
const mib = (bytes: number) => `${(bytes / MiB).toFixed(0)} MiB`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const broker = await startBrokerProcess({ env });
const brokers = `127.0.0.1:${broker.port}`;
try {
  const setup = await connect({ brokers });
  await setup.admin.createTopic({ name: 'big', partitions: 1 });
  await setup.admin.createTopic({ name: 'calm', partitions: 1 });
  // 64 MiB of data for readers to ask for.
  const filler = setup.producer();
  const value = Buffer.alloc(60 * 1024, 7);
  for (let i = 0; i < 64 * MiB; i += 16 * value.length)
    await Promise.all(Array.from({ length: 16 }, () => filler.send({ topic: 'big', value })));
  await setup.close();
  const baseline = memory(broker.pid);
  console.log(`broker pid ${broker.pid}, RSS before the attack ${mib(baseline.rss)}`);

  // A well-behaved producer and consumer beside the attack.
  const honest = await connect({ brokers });
  const producer = honest.producer();
  const consumer = honest.consumer({ topics: ['calm'] });
  let acked = 0;
  let consumed = 0;
  let running = true;
  let worstAckMs = 0;
  const producing = (async () => {
    while (running) {
      const started = Date.now();
      await producer.send({ topic: 'calm', value: Buffer.alloc(100, 1) }).catch(() => undefined);
      worstAckMs = Math.max(worstAckMs, Date.now() - started);
      acked++;
      await sleep(20);
    }
  })();
  const consuming = (async () => {
    for await (const _ of consumer) {
      consumed++;
      if (!running) break;
    }
  })();

  const attackers = Number(process.env.ATTACKERS ?? 0);
  let attack: Attack;
  if (kind === 'fetch')
    attack = await pipelinedFetches(broker.port, {
      topic: 'big',
      connections: attackers || 60,
      requests: 4000,
    });
  else if (kind === 'subscribe')
    attack = await hugeCreditSubscriptions(broker.port, { topic: 'big', connections: attackers || 60 });
  else if (kind === 'half-frame')
    attack = await halfSentFrames(broker.port, {
      topic: 'calm',
      connections: attackers || 100,
      declared: 8 * MiB - 1024,
      sent: 7 * MiB,
    });
  else attack = await connectionFlood(broker.port, { connections: attackers || 12_000 });
  console.log(`${kind}: ${attack.sockets.length} attacking connections`);
  const ackedBefore = acked;
  for (let s = 0; s < seconds; s++) {
    await sleep(1000);
    const open = attack.sockets.filter((socket) => !socket.destroyed && !socket.readableEnded).length;
    console.log(`  t=${s + 1}s RSS ${mib(memory(broker.pid).rss)}, attackers open ${open}, acks ${acked}`);
  }
  const during = memory(broker.pid);
  console.log(
    `during: peak RSS ${mib(during.peak)}; honest producer acks ${acked - ackedBefore} (slowest ${worstAckMs} ms), consumed ${consumed}`,
  );
  attack.leave();
  const left = Date.now();
  const fresh = await connect({ brokers });
  await fresh.producer().send({ topic: 'calm', value: Buffer.from('after') });
  console.log(`after leaving: a new client connected and produced in ${Date.now() - left} ms`);
  await fresh.close();
  running = false;
  await sleep(5000);
  console.log(`5 s after leaving: RSS ${mib(memory(broker.pid).rss)}`);
  await producing;
  await honest.close().catch(() => undefined);
  await consuming.catch(() => undefined);
} finally {
  await broker.stop();
}
