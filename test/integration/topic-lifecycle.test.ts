// Topic administration against a real broker (TCP and in-process): streams across partition
// growth, createTopic options (unknown ones refused, ifNotExists), a topic that cannot be opened
// at start (isolated, the rest serves), and the log line a full disk leaves.
import { execFileSync } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Client } from '../../src/client/client.js';
import { connect } from '../../src/client/connect.js';
import { Broker } from '../../src/embedded/broker.js';
import type { BrokerLogger } from '../../src/metrics/logger.js';
import { ErrorCode } from '../../src/protocol/error-codes.js';
import { encodeRecordBatch } from '../../src/protocol/record-batch.js';
import { useTempDir } from '../harness/temp-dir.js';

const scratch = useTempDir('ms-topic-life-');
let dataDir: string;
const cleanups: (() => Promise<unknown>)[] = [];
beforeEach(async () => {
  dataDir = scratch.path;
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startBroker(
  options: { logger?: BrokerLogger; admin?: { port: number } } = {},
): Promise<Broker> {
  const broker = await Broker.start({ dataDir, port: 0, ...options });
  cleanups.push(() => broker.stop());
  return broker;
}

async function tcpClient(broker: Broker): Promise<Client> {
  const client = await connect({ brokers: `127.0.0.1:${broker.address!.port}` });
  cleanups.push(() => client.close());
  return client;
}

interface LogLine {
  level: string;
  fields: Record<string, unknown>;
  message: string;
}

function capturingLogger(lines: LogLine[]): BrokerLogger {
  const at =
    (level: string) =>
    (fields: Record<string, unknown>, message: string): void => {
      lines.push({ level, fields, message });
    };
  return { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') };
}

describe('streams across partition growth', () => {
  it('refuses to grow a topic with keyed messages; the stream keeps its history and versions', async () => {
    const broker = await startBroker();
    const client = await tcpClient(broker);
    await client.admin.createTopic({ name: 'orders', partitions: 1 });
    const producer = client.producer();
    expect(
      (await producer.send({ topic: 'orders', key: 'order-1', value: 'created', expectedVersion: 0 }))
        .sequence,
    ).toBe(0);
    expect(
      (await producer.send({ topic: 'orders', key: 'order-1', value: 'paid', expectedVersion: 1 })).sequence,
    ).toBe(1);

    const refused = await client.admin.alterTopic({ name: 'orders', partitions: 4 }).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: ErrorCode.PARTITION_GROWTH_MOVES_KEYS });
    expect((refused as Error).message).toMatch(/version 0/);
    expect((refused as Error).message).toMatch(/allowKeyMovement/);
    expect((await client.admin.describeTopic('orders')).topic.partitions).toBe(1);

    // The stream goes on where it was: version 2 is the next, a stale version 0 is refused.
    expect(
      (await producer.send({ topic: 'orders', key: 'order-1', value: 'shipped', expectedVersion: 2 }))
        .sequence,
    ).toBe(2);
    await expect(
      producer.send({ topic: 'orders', key: 'order-1', value: 'stale', expectedVersion: 0 }),
    ).rejects.toMatchObject({ code: ErrorCode.STREAM_VERSION_CONFLICT });
    const stream = await broker.core.execute('readStream', {
      topic: 'orders',
      key: Buffer.from('order-1'),
      fromSequence: 0,
      maxRecords: 10,
      maxWaitMs: 0,
    });
    expect(stream.records.map((r) => r.value?.toString())).toEqual(['created', 'paid', 'shipped']);
    await producer.close();

    // Asked for explicitly, the growth happens (the consequence is the caller's).
    const grown = await client.admin.alterTopic({ name: 'orders', partitions: 4, allowKeyMovement: true });
    expect(grown.partitions).toBe(4);
  });

  it('grows a topic without keyed messages as before, and an in-process caller gets the same refusal', async () => {
    const broker = await startBroker();
    const client = broker.connect();
    cleanups.push(() => client.close());
    await client.admin.createTopic({ name: 'logs', partitions: 1 });
    const producer = client.producer();
    await producer.send({ topic: 'logs', value: 'no key' });
    expect((await client.admin.alterTopic({ name: 'logs', partitions: 3 })).partitions).toBe(3);
    await producer.send({ topic: 'logs', key: 'k', value: 'keyed now', partition: 0 });
    await producer.close();
    await expect(client.admin.alterTopic({ name: 'logs', partitions: 5 })).rejects.toMatchObject({
      code: ErrorCode.PARTITION_GROWTH_MOVES_KEYS,
    });
    // Configuration changes are not growth: allowed.
    expect(
      (await client.admin.alterTopic({ name: 'logs', config: { retentionMs: 60_000 } })).config.retentionMs,
    ).toBe(60_000);
  });
});

describe('produces during a topic change', () => {
  it('wait for a growth to commit instead of writing where it is not committed yet', async () => {
    const broker = await startBroker();
    const core = broker.core;
    await core.execute('createTopic', { name: 'logs', partitions: 1 });
    const batch = encodeRecordBatch([{ key: null, value: 'into a new partition' }]);
    // Issued while the growth is under way: it waits, then lands in the committed partition 2.
    const growing = core.execute('alterTopic', { name: 'logs', partitions: 3 });
    const produced = core.execute('produce', { topic: 'logs', partition: 2, acks: 1, batch });
    expect((await growing).partitions).toBe(3);
    expect((await produced).baseOffset).toBe(0n);
    // The same while a topic is created.
    const creating = core.execute('createTopic', { name: 'fresh', partitions: 2 });
    const first = core.execute('produce', { topic: 'fresh', partition: 1, acks: 1, batch });
    await creating;
    expect((await first).baseOffset).toBe(0n);
  });
});

describe('createTopic options', () => {
  it('refuses unknown options and configuration keys, over TCP and in-process, naming them', async () => {
    const broker = await startBroker();
    for (const client of [await tcpClient(broker), broker.connect()]) {
      await expect(
        client.admin.createTopic({ name: 'a', partitions: 1, config: { retentionMS: 5 } } as never),
      ).rejects.toMatchObject({
        code: ErrorCode.INVALID_CONFIG,
        message: expect.stringContaining('"retentionMS"'),
      });
      await expect(
        client.admin.createTopic({ name: 'a', partitions: 1, retentionMs: 5 } as never),
      ).rejects.toMatchObject({
        code: ErrorCode.INVALID_CONFIG,
        message: expect.stringContaining('"retentionMs"'),
      });
      await expect(client.admin.alterTopic({ name: 'a', partitons: 3 } as never)).rejects.toMatchObject({
        code: ErrorCode.INVALID_CONFIG,
        message: expect.stringContaining('"partitons"'),
      });
    }
    // The broker checks too (an in-process request that skips the client).
    await expect(
      broker.core.execute('createTopic', { name: 'a', durability: 'always' } as never),
    ).rejects.toMatchObject({ code: ErrorCode.INVALID_CONFIG });
    expect((await broker.connect().admin.listTopics()).map((t) => t.name)).not.toContain('a');
  });

  it('ifNotExists returns the existing topic unchanged instead of TOPIC_ALREADY_EXISTS', async () => {
    const broker = await startBroker();
    const client = await tcpClient(broker);
    const created = await client.admin.createTopic({ name: 'orders', partitions: 2, ifNotExists: true });
    await expect(client.admin.createTopic({ name: 'orders', partitions: 2 })).rejects.toMatchObject({
      code: ErrorCode.TOPIC_ALREADY_EXISTS,
    });
    const again = await client.admin.createTopic({ name: 'orders', partitions: 8, ifNotExists: true });
    expect(again).toEqual(created);
  });
});

describe('the broker-wide partition limit', () => {
  it('refuses a create or a growth past topics.max_partitions up front, concurrent ones too, creating nothing', async () => {
    const broker = await Broker.start({ dataDir, port: 0, maxPartitions: 10 });
    cleanups.push(() => broker.stop());
    const admin = (await tcpClient(broker)).admin;
    await admin.createTopic({ name: 'a', partitions: 6 });
    await expect(admin.createTopic({ name: 'b', partitions: 5 })).rejects.toMatchObject({
      code: ErrorCode.PARTITION_LIMIT_EXCEEDED,
      message: expect.stringContaining(
        '5 new partition(s) on top of the 6 this broker holds would pass topics.max_partitions = 10',
      ),
    });
    await expect(admin.alterTopic({ name: 'a', partitions: 11 })).rejects.toMatchObject({
      code: ErrorCode.PARTITION_LIMIT_EXCEEDED,
    });
    // Two creations at once cannot pass the limit together: one of them is refused.
    const results = await Promise.allSettled([
      admin.createTopic({ name: 'c', partitions: 3 }),
      admin.createTopic({ name: 'd', partitions: 3 }),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const names = (await admin.listTopics()).map((t) => t.name).sort();
    expect(names.filter((n) => !n.startsWith('__'))).toHaveLength(2);
    expect(names).not.toContain('b');
    // What fits is still created, up to the limit exactly.
    await admin.alterTopic({ name: 'a', partitions: 7 });
  });
});

describe('a topic that cannot be opened at start', () => {
  it('is reported and isolated: the broker starts and serves the others', async () => {
    let broker = await Broker.start({ dataDir });
    const admin = broker.connect().admin;
    for (const name of ['good', 'broken', 'unreadable']) await admin.createTopic({ name, partitions: 2 });
    await broker.stop();
    // A partition directory replaced by a file, and a topic.json that is not JSON.
    await rm(join(dataDir, 'topics', 'broken', '1'), { recursive: true });
    await writeFile(join(dataDir, 'topics', 'broken', '1'), 'not a directory');
    await writeFile(join(dataDir, 'topics', 'unreadable', 'topic.json'), '{ oops');

    const lines: LogLine[] = [];
    broker = await startBroker({ logger: capturingLogger(lines), admin: { port: 0 } });
    const offline = lines.filter((l) => l.level === 'error' && /offline/.test(l.message));
    expect(offline.map((l) => l.fields.topic).sort()).toEqual(['broken', 'unreadable']);
    expect(String(offline.find((l) => l.fields.topic === 'unreadable')?.fields.reason)).toMatch(
      /not valid JSON/,
    );
    expect(
      broker.core
        .offlineTopics()
        .map((t) => t.topic)
        .sort(),
    ).toEqual(['broken', 'unreadable']);
    // Operators see them on the status API and in the metrics.
    const adminUrl = `http://127.0.0.1:${broker.admin!.address.port}`;
    const status = (await (await fetch(`${adminUrl}/api/status`)).json()) as {
      offlineTopics: Array<{ topic: string }>;
    };
    expect(status.offlineTopics.map((t) => t.topic).sort()).toEqual(['broken', 'unreadable']);
    expect(await (await fetch(`${adminUrl}/metrics`)).text()).toMatch(/^memorystreamer_topics_offline 2$/m);

    const client = await tcpClient(broker);
    const producer = client.producer();
    expect((await producer.send({ topic: 'good', value: 'served', partition: 1 })).offset).toBe(0n);
    await producer.close();
    for (const name of ['broken', 'unreadable']) {
      await expect(client.admin.describeTopic(name)).rejects.toMatchObject({ code: ErrorCode.TOPIC_OFFLINE });
      await expect(
        broker.core.execute('fetch', { topic: name, partition: 0, offset: 0n, maxBytes: 1024, maxWaitMs: 0 }),
      ).rejects.toMatchObject({ code: ErrorCode.TOPIC_OFFLINE });
    }
    // Deleting an offline topic frees its name.
    await client.admin.deleteTopic('unreadable');
    await client.admin.createTopic({ name: 'unreadable', partitions: 1 });
    expect(broker.core.offlineTopics().map((t) => t.topic)).toEqual(['broken']);
  });
});

describe('a full disk', () => {
  it('logs which partition and path refuse writes, and that they resume when space returns', async (context) => {
    const mount = join(dataDir, 'small');
    await mkdir(mount);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mount], { stdio: 'pipe' });
    } catch (error) {
      context.skip(`cannot mount a tmpfs: ${(error as Error).message}`);
    }
    cleanups.push(async () => execFileSync('umount', ['-l', mount], { stdio: 'pipe' }));
    const lines: LogLine[] = [];
    const broker = await Broker.start({ dataDir: join(mount, 'data'), logger: capturingLogger(lines) });
    cleanups.push(() => broker.stop());
    const client = broker.connect();
    await client.admin.createTopic({ name: 'fill', partitions: 1, config: { segmentBytes: 256 * 1024 } });
    await client.admin.createTopic({ name: 'ballast', partitions: 1 });
    // STORAGE_FULL is retriable; this test wants each send's own answer, not retries until space returns.
    const producer = client.producer({ lingerMs: 0, retries: 0 });
    const value = Buffer.alloc(60 * 1024, 7);
    for (let i = 0; i < 6; i++) await producer.send({ topic: 'ballast', value });
    let full: unknown = null;
    for (let i = 0; i < 200 && full === null; i++) {
      await producer.send({ topic: 'fill', value }).catch((error: unknown) => {
        full = error;
      });
    }
    expect(full).toMatchObject({ code: ErrorCode.STORAGE_FULL });
    const warning = lines.find((l) => l.level === 'warn' && /storage full/.test(l.message));
    expect(warning?.fields).toMatchObject({ topic: 'fill', partition: 0 });
    expect(String(warning?.fields.path)).toContain(join(mount, 'data', 'topics', 'fill', '0'));
    expect(warning?.message).toMatch(/resume when space returns/);
    // Logged once per episode, not per refused write.
    await producer.send({ topic: 'fill', value }).catch(() => undefined);
    expect(lines.filter((l) => /storage full/.test(l.message))).toHaveLength(1);
    // Space returns (another topic goes): the next write succeeds and says so.
    await client.admin.deleteTopic('ballast');
    await producer.send({ topic: 'fill', value: 'again' });
    expect(lines.find((l) => l.level === 'info' && /space again/.test(l.message))?.fields).toMatchObject({
      topic: 'fill',
      partition: 0,
    });
    await producer.close().catch(() => undefined);
  });
});
