// Quotas of tenants and principals on a real broker (embedded, port 0, SCRAM users): a producer
// over its tenant's byte rate is held to it (rate measured over a window, THROTTLE frames received,
// no error); storage, topic, partition and connection quotas refuse with their codes; a quota
// changed in tenants.json applies to an open connection at once; the tenant's metrics count it.

import { afterEach, describe, expect, it } from 'vitest';
import { TcpTransport } from '../../src/client/tcp-transport.js';
import type { MemoryStreamerError } from '../../src/common/errors.js';
import type { Broker } from '../../src/embedded/broker.js';
import { BinaryReader } from '../../src/protocol/codec/binary-reader.js';
import { BinaryWriter } from '../../src/protocol/codec/binary-writer.js';
import {
  authenticateFinishCommand,
  authenticateStartCommand,
} from '../../src/protocol/commands/auth-commands.js';
import { COMMANDS } from '../../src/protocol/commands/registry.js';
import { ErrorCode } from '../../src/protocol/error-codes.js';
import { FrameFlags } from '../../src/protocol/frame-header.js';
import { Opcode } from '../../src/protocol/opcodes.js';
import { encodeRecordBatch } from '../../src/protocol/record-batch.js';
import { deriveCredential } from '../../src/security/credentials.js';
import { ScramClient } from '../../src/security/scram.js';
import type { Quota } from '../../src/security/tenant-store.js';
import { TenantStore } from '../../src/security/tenant-store.js';
import { UserStore } from '../../src/security/user-store.js';
import { RawClient } from '../broker/server/helpers/raw-client.js';
import { startEmbeddedBroker } from '../harness/embedded.js';
import { tempDir } from '../harness/temp-dir.js';
import { until } from '../harness/until.js';

const timeout = { timeoutMs: 10_000 };
const transports: TcpTransport[] = [];

afterEach(async () => {
  for (const t of transports.splice(0)) await t.close().catch(() => undefined);
});

/** A broker with users alice (tenant acme, with `quota`) and admin (super-user). */
async function startBroker(quota: Quota, principalQuota: Quota = {}) {
  const dataDir = await tempDir('ms-quota-');
  const users = await UserStore.open(dataDir);
  for (const name of ['alice', 'admin'])
    await users.change({
      kind: 'add',
      name,
      credentials: { 'SCRAM-SHA-256': deriveCredential('SCRAM-SHA-256', `${name}-secret`, 4096) },
    });
  const tenants = await TenantStore.open(dataDir);
  await tenants.change({ kind: 'add', tenant: 'acme' });
  await tenants.change({ kind: 'add-principal', tenant: 'acme', principal: 'User:alice' });
  await tenants.change({ kind: 'set-quota', tenant: 'acme', quota });
  if (Object.keys(principalQuota).length > 0)
    await tenants.change({ kind: 'set-quota', principal: 'User:alice', quota: principalQuota });
  const broker: Broker = await startEmbeddedBroker({
    dataDir,
    port: 0,
    stopDeadlineMs: 200,
    auth: { mechanisms: ['SCRAM-SHA-256'], superUsers: ['User:admin'] },
  });
  return { broker, port: broker.address!.port, tenants };
}

function transportAs(port: number, user: string): TcpTransport {
  const transport = new TcpTransport({
    brokers: [{ host: '127.0.0.1', port }],
    sasl: { mechanism: 'SCRAM-SHA-256', username: user, password: `${user}-secret` },
  });
  transports.push(transport);
  return transport;
}

/** A raw connection authenticated as `user` (to see the THROTTLE frames the broker sends). */
async function rawAs(port: number, user: string): Promise<RawClient> {
  const raw = await RawClient.open(port);
  await raw.handshake();
  const scram = new ScramClient({ mechanism: 'SCRAM-SHA-256', username: user, password: `${user}-secret` });
  const start = new BinaryWriter(128);
  authenticateStartCommand.encodeRequest(start, {
    mechanism: 'SCRAM-SHA-256',
    message: Buffer.from(scram.first()),
  });
  raw.send(Opcode.AUTHENTICATE_START, start.finish(), 1);
  const started = await raw.waitFor((f) => f.header.correlationId === 1);
  const serverFirst = authenticateStartCommand.decodeResponse(new BinaryReader(started.payload)).message;
  const finish = new BinaryWriter(128);
  authenticateFinishCommand.encodeRequest(finish, {
    message: Buffer.from(scram.final(serverFirst.toString())),
  });
  raw.send(Opcode.AUTHENTICATE_FINISH, finish.finish(), 2);
  await raw.waitFor((f) => f.header.correlationId === 2);
  return raw;
}

async function failure(promise: Promise<unknown>): Promise<MemoryStreamerError> {
  const outcome = await promise.then(
    () => null,
    (error: unknown) => error as MemoryStreamerError,
  );
  if (outcome === null) throw new Error('expected the request to be refused');
  return outcome;
}

function batchOf(bytes: number): Buffer {
  return encodeRecordBatch([{ value: Buffer.alloc(bytes, 0x61) }]);
}

async function metric(broker: Broker, name: string): Promise<number> {
  const text = await broker.core.metrics.registry.metrics();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{tenant="acme"}`));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

describe('tenant quotas', () => {
  it('holds a producer over its byte rate to the quota with THROTTLE frames, never an error', async () => {
    const rate = 200_000;
    const { broker, port } = await startBroker({ produceBytesPerSec: rate });
    await transportAs(port, 'alice').request('createTopic', { name: 'fast', partitions: 1 }, timeout);
    const raw = await rawAs(port, 'alice');
    const batch = batchOf(10_000);
    const requests = 60;
    const started = performance.now();
    for (let id = 100; id < 100 + requests; id++) {
      const writer = new BinaryWriter(batch.length + 64);
      COMMANDS.produce.encodeRequest(writer, { topic: 'fast', partition: 0, acks: 1, batch });
      raw.send(Opcode.PRODUCE, writer.finish(), id);
      const answer = await raw.waitFor((f) => f.header.correlationId === id, 20_000);
      expect(answer.header.flags & FrameFlags.ERROR).toBe(0);
    }
    // The last answer arrives before the hold it causes: the window ends there, without its bytes.
    const seconds = (performance.now() - started) / 1000;
    const measured = ((requests - 1) * batch.length) / seconds;
    // Held to the quota (plus one 100 ms burst): never more than 10% over it.
    expect(measured).toBeLessThan(rate * 1.1);
    // And not starved: the producer gets most of its quota even on a loaded machine.
    expect(measured).toBeGreaterThan(rate * 0.6);
    const throttles = raw.frames.filter((f) => f.header.opcode === Opcode.THROTTLE);
    expect(throttles.length).toBeGreaterThan(requests / 2);
    raw.destroy();
    expect(await metric(broker, 'memorystreamer_tenant_bytes_in_total')).toBe(requests * batch.length);
    expect(await metric(broker, 'memorystreamer_tenant_throttle_seconds_total')).toBeGreaterThan(1);
  });

  it('holds fetches and requests to their rates (the client waits out each THROTTLE)', async () => {
    const { broker, port } = await startBroker({}, { fetchBytesPerSec: 400_000, requestsPerSec: 40 });
    const alice = transportAs(port, 'alice');
    await alice.request('createTopic', { name: 'read', partitions: 1 }, timeout);
    await alice.request('produce', { topic: 'read', partition: 0, acks: 1, batch: batchOf(40_000) }, timeout);
    // The window ends with the last answer, before the hold that answer causes: its bytes are
    // not counted in the rate.
    let fetched = 0;
    let last = 0;
    const started = performance.now();
    for (let i = 0; i < 30; i++) {
      const answer = await alice.request(
        'fetch',
        { topic: 'read', partition: 0, offset: 0n, maxBytes: 1 << 20, maxWaitMs: 0 },
        timeout,
      );
      fetched += answer.batches.length;
      last = answer.batches.length;
    }
    const fetchRate = (fetched - last) / ((performance.now() - started) / 1000);
    expect(fetched).toBeGreaterThan(30 * 40_000);
    expect(fetchRate).toBeLessThan(400_000 * 1.1);
    // Requests: 80 at 40 per second take at least (80 - one 100 ms burst) / 40 s.
    const begun = performance.now();
    for (let i = 0; i < 80; i++) await alice.request('listTopics', {}, timeout);
    const requestRate = 79 / ((performance.now() - begun) / 1000);
    expect(requestRate).toBeLessThan(40 * 1.1);
    expect(await metric(broker, 'memorystreamer_tenant_bytes_out_total')).toBe(fetched);
  });

  it('refuses a produce once the tenant holds more than its storage quota', async () => {
    const { broker, port } = await startBroker({ storageBytes: 50_000 });
    const alice = transportAs(port, 'alice');
    await alice.request('createTopic', { name: 'big', partitions: 1 }, timeout);
    const produce = () =>
      alice.request('produce', { topic: 'big', partition: 0, acks: 1, batch: batchOf(30_000) }, timeout);
    await produce();
    await produce();
    const error = await failure(produce());
    expect(error.code).toBe(ErrorCode.TENANT_STORAGE_QUOTA_EXCEEDED);
    expect(error.message).toMatch(/tenant acme holds \d+ bytes, its quota is 50000/);
    await until(async () => (await metric(broker, 'memorystreamer_tenant_storage_bytes')) > 50_000, {
      timeoutMs: 10_000,
    });
  });

  it('refuses topics and partitions over the count quotas', async () => {
    const { port } = await startBroker({ topics: 2, partitions: 4 });
    const alice = transportAs(port, 'alice');
    await alice.request('createTopic', { name: 'a', partitions: 2 }, timeout);
    const tooWide = await failure(alice.request('createTopic', { name: 'b', partitions: 3 }, timeout));
    expect(tooWide.code).toBe(ErrorCode.TENANT_TOPIC_QUOTA_EXCEEDED);
    expect(tooWide.message).toMatch(/4 partitions; this would make 5/);
    await alice.request('createTopic', { name: 'b', partitions: 2 }, timeout);
    const third = await failure(alice.request('createTopic', { name: 'c', partitions: 1 }, timeout));
    expect(third.code).toBe(ErrorCode.TENANT_TOPIC_QUOTA_EXCEEDED);
    const grown = await failure(alice.request('alterTopic', { name: 'a', partitions: 3 }, timeout));
    expect(grown.code).toBe(ErrorCode.TENANT_TOPIC_QUOTA_EXCEEDED);
    // A super-user is not held by a tenant's quotas.
    await transportAs(port, 'admin').request('createTopic', { name: 'acme.extra', partitions: 1 }, timeout);
  });

  it('refuses a connection over the principal connection quota with its code', async () => {
    const { port } = await startBroker({}, { connections: 1 });
    const first = transportAs(port, 'alice');
    await first.request('listTopics', {}, timeout);
    const second = transportAs(port, 'alice');
    const error = await failure(second.request('listTopics', {}, timeout));
    expect(error.code).toBe(ErrorCode.CONNECTION_QUOTA_EXCEEDED);
    expect(error.message).toMatch(/User:alice has 1 of 1 connections/);
    // The first connection still works; once it closes, a new one is admitted.
    await first.request('listTopics', {}, timeout);
    await first.close();
    await until(
      async () =>
        transportAs(port, 'alice')
          .request('listTopics', {}, timeout)
          .then(
            () => true,
            () => false,
          ),
      { timeoutMs: 10_000 },
    );
  });

  it('applies a quota changed in tenants.json to an open connection at once', async () => {
    const { port, tenants } = await startBroker({});
    const alice = transportAs(port, 'alice');
    await alice.request('createTopic', { name: 'one', partitions: 1 }, timeout);
    await tenants.change({ kind: 'set-quota', tenant: 'acme', quota: { topics: 1 } });
    // The broker reads the file again within its refresh interval (500 ms); the open connection
    // is held by the new quota from then on.
    await until(
      async () =>
        alice.request('createTopic', { name: 'two', partitions: 1 }, timeout).then(
          () => {
            throw new Error('created a topic past the new quota');
          },
          (error: MemoryStreamerError) => error.code === ErrorCode.TENANT_TOPIC_QUOTA_EXCEEDED,
        ),
      { timeoutMs: 10_000 },
    );
  });
});
