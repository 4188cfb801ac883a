// Fairness under request floods, against a real broker on port 0: attackers on bare sockets that
// pipeline requests and never read their answers must not hold back an honest client's requests
// (its fetch is answered while they are still connected, its produce requests keep being
// acknowledged), and what they cost stays counted in the budgets.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import type { ServerLimits } from '../../../src/broker/server/server-limits.js';
import type { Client } from '../../../src/client/client.js';
import { connect } from '../../../src/client/connect.js';
import type { Broker } from '../../../src/embedded/broker.js';
import type { BrokerLogger } from '../../../src/metrics/logger.js';
import { BinaryWriter } from '../../../src/protocol/codec/binary-writer.js';
import { COMMANDS } from '../../../src/protocol/commands/registry.js';
import { encodeFrame, FrameFlags } from '../../../src/protocol/frame-header.js';
import { Opcode } from '../../../src/protocol/opcodes.js';
import { startEmbeddedBroker } from '../../harness/embedded.js';
import { until } from '../../harness/until.js';
import { type Attack, pipelinedFetches } from './helpers/attacks.js';
import { RawClient } from './helpers/raw-client.js';

const MiB = 1024 * 1024;
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface LogLine {
  message: string;
  fields: Record<string, unknown>;
}

async function startBroker(
  limits: Partial<ServerLimits>,
): Promise<{ broker: Broker; port: number; log: LogLine[] }> {
  const log: LogLine[] = [];
  const record = (fields: Record<string, unknown>, message: string) => log.push({ message, fields });
  const logger: BrokerLogger = { info() {}, debug() {}, warn: record, error: record };
  const broker = await startEmbeddedBroker({ port: 0, limits, logger, stopDeadlineMs: 500 });
  return { broker, port: broker.address!.port, log };
}

async function client(port: number): Promise<Client> {
  const c = await connect({ brokers: `127.0.0.1:${port}` });
  cleanups.push(() => c.close().catch(() => undefined));
  return c;
}

function leaveLater(attack: Attack): Attack {
  cleanups.push(async () => attack.leave());
  return attack;
}

function fetchRequest(topic: string, correlationId: number, maxBytes: number): Buffer {
  const writer = new BinaryWriter(64);
  COMMANDS.fetch.encodeRequest(writer, { topic, partition: 0, offset: 0n, maxBytes, maxWaitMs: 0 });
  return encodeFrame({ opcode: Opcode.FETCH, correlationId }, writer.finish());
}

/**
 * Starts the tiny-request flood in its own process (helpers/tiny-flood-process.ts); resolves once
 * its connections are open. `written()` is the count of frames it reported written.
 */
async function tinyFlood(
  port: number,
  connections: number,
): Promise<{ written: () => number; stop(): void }> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(import.meta.dirname, 'helpers', 'tiny-flood-process.ts'),
      String(port),
      String(connections),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const stop = () => {
    if (child.exitCode === null && child.pid !== undefined) child.kill('SIGKILL');
  };
  cleanups.push(async () => stop());
  let written = 0;
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the flood process exited (${code})`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line === 'ready') resolve();
      else written = Number(line);
    });
  });
  return { written: () => written, stop };
}

describe('fairness under request floods', () => {
  it('an honest fetch is answered at once while pipelined fetchers that never read hold the budget', async () => {
    // Every fetch is clamped to 256 KiB; the attackers could hold 16 × 2 MiB, twice the budget.
    const limits = {
      connectionBudgetBytes: 2 * MiB,
      maxOutboundBytes: 2 * MiB,
      globalBudgetBytes: 16 * MiB,
      maxFetchBytes: 256 * 1024,
    };
    const { broker, port, log } = await startBroker(limits);
    const setup = await client(port);
    await setup.admin.createTopic({ name: 'big', partitions: 1 });
    const producer = setup.producer();
    const value = Buffer.alloc(32 * 1024, 7);
    for (let i = 0; i < 32; i++) await producer.send({ topic: 'big', value });
    await setup.admin.createTopic({ name: 'calm', partitions: 1 });
    await producer.send({ topic: 'calm', value: Buffer.from('honest') });

    const honest = await RawClient.open(port);
    cleanups.push(async () => honest.destroy());
    await honest.handshake();
    leaveLater(await pipelinedFetches(port, { topic: 'big', connections: 16, requests: 1000 }));
    // The attackers fill the budget (all but what is left for small fetches) and stay there.
    let last = -1;
    let sameSince = Date.now();
    await until(
      () => {
        const held = broker.server!.heldBytes;
        if (held !== last) {
          last = held;
          sameSince = Date.now();
        }
        return held >= limits.globalBudgetBytes - 3 * MiB && Date.now() - sameSince >= 300;
      },
      // Sampled every 20 ms: the condition is the held bytes staying the same for 300 ms.
      { what: 'the attackers hold the budget', timeoutMs: 20_000, intervalMs: 20 },
    );
    const cutsBefore = log.filter((l) => l.fields.code === 'CLIENT_NOT_READING').length;
    expect(cutsBefore).toBe(0);
    const started = performance.now();
    honest.write(fetchRequest('calm', 10, MiB));
    const answer = await honest.waitFor((f) => f.header.correlationId === 10, 10_000);
    const latencyMs = performance.now() - started;
    expect(answer.header.flags & FrameFlags.ERROR).toBe(0);
    expect(answer.payload.length).toBeGreaterThan(16);
    // Answered beside the attackers (none had to be cut first to make room), well within the bound.
    expect(log.filter((l) => l.fields.code === 'CLIENT_NOT_READING')).toEqual([]);
    expect(latencyMs).toBeLessThan(2000);
    // The attackers' own bytes stay within the budget (one socket read each beyond it at most).
    expect(broker.server!.heldBytes).toBeLessThanOrEqual(limits.globalBudgetBytes + 16 * 64 * 1024);
  });

  it('a flood of tiny requests: an honest producer keeps getting acks, held bytes stay bounded', async () => {
    const limits = { globalBudgetBytes: 16 * MiB, connectionBudgetBytes: 4 * MiB, maxOutboundBytes: 4 * MiB };
    const { broker, port } = await startBroker(limits);
    const honest = await client(port);
    await honest.admin.createTopic({ name: 'calm', partitions: 1 });
    const producer = honest.producer();
    await producer.send({ topic: 'calm', value: Buffer.from('before') });
    const baseline = process.memoryUsage();
    let peakHeld = 0;
    let peakMemory = 0;
    const sampler = setInterval(() => {
      peakHeld = Math.max(peakHeld, broker.server!.heldBytes);
      const now = process.memoryUsage();
      peakMemory = Math.max(
        peakMemory,
        now.heapUsed + now.arrayBuffers - baseline.heapUsed - baseline.arrayBuffers,
      );
    }, 10);
    cleanups.push(async () => clearInterval(sampler));
    const flood = await tinyFlood(port, 32);
    await until(() => flood.written() > 200_000, { what: 'the flood is under way' });
    let slowest = 0;
    for (let i = 0; i < 30; i++) {
      const started = performance.now();
      await producer.send({ topic: 'calm', value: Buffer.from(`during ${i}`) });
      slowest = Math.max(slowest, performance.now() - started);
    }
    flood.stop();
    clearInterval(sampler);
    expect(slowest).toBeLessThan(2000);
    // Counted bytes: the budget plus one socket read per connection; and what the process really
    // holds for them stays of the same order (answers queued to non-readers are not per-frame objects).
    expect(peakHeld).toBeLessThanOrEqual(limits.globalBudgetBytes + 25 * 64 * 1024);
    expect(peakMemory).toBeLessThan(64 * MiB);
    await until(() => broker.server!.connectionCount <= 1, { what: 'the flooders are gone' });
    await until(() => broker.server!.heldBytes < MiB, { what: 'their bytes are released' });
  });
});
