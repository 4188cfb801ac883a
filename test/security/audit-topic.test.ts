// The audit topic (`audit.topic`): every record of the disk log is also a message of an internal
// topic, key the action, value the record's line as on disk, so the chain can be checked from the
// topic (`memorystreamer audit verify --topic`). Real embedded brokers with SCRAM and ACLs on port 0;
// the topic is readable by super-users (and ACLs), writable by nobody over the wire, hidden from
// topic lists; its write never fails the audited action.

import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../../src/cli/main.js';
import { connect } from '../../src/client/connect.js';
import type { MemoryStreamerError } from '../../src/common/errors.js';
import { AuditLog, rotatedAuditFiles } from '../../src/security/audit-log.js';
import type { AuditRecord } from '../../src/security/audit-record.js';
import { AuditTopicWriter } from '../../src/security/audit-topic.js';
import { tailAuditLog, verifyAuditChain } from '../../src/security/audit-verify.js';
import { deriveCredential } from '../../src/security/credentials.js';
import { UserStore } from '../../src/security/user-store.js';
import { startEmbeddedBroker } from '../harness/embedded.js';
import { tempDir } from '../harness/temp-dir.js';
import { until } from '../harness/until.js';

async function addUser(dataDir: string, name: string, password: string): Promise<void> {
  const store = await UserStore.open(dataDir);
  await store.change({
    kind: 'add',
    name,
    credentials: { 'SCRAM-SHA-256': deriveCredential('SCRAM-SHA-256', password) },
  });
}

async function cli(env: NodeJS.ProcessEnv, ...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(argv, { env, out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

type Client = Awaited<ReturnType<typeof connect>>;

/** Every message of partition 0 of `topic`, from its start to its end. */
async function readAll(client: Client, topic: string): Promise<{ key: string; value: string }[]> {
  const end = await client.admin.offsetOf(topic, 0, 'latest');
  const found: { key: string; value: string }[] = [];
  if (end === 0n) return found;
  const consumer = client.consumer({ topics: [topic], partitions: [0], from: 'earliest' });
  try {
    for await (const message of consumer) {
      found.push({ key: message.key?.toString('utf8') ?? '', value: message.value?.toString('utf8') ?? '' });
      if (message.offset >= end - 1n) break;
    }
  } finally {
    await consumer.close();
  }
  return found;
}

async function startSecured(topic: string) {
  const dataDir = await tempDir('ms-audit-topic-');
  await addUser(dataDir, 'alice', 'alice-secret');
  await addUser(dataDir, 'admin', 'admin-secret');
  const broker = await startEmbeddedBroker({
    dataDir,
    port: 0,
    stopDeadlineMs: 200,
    auth: { mechanisms: ['SCRAM-SHA-256'], superUsers: ['User:admin'], failureDelayMs: 1 },
    authz: { superUsers: ['User:admin'] },
    audit: { topic },
  });
  const brokers = `127.0.0.1:${broker.address!.port}`;
  const as = (username: string, password: string) =>
    connect({ brokers, sasl: { mechanism: 'SCRAM-SHA-256', username, password } });
  return { dataDir, broker, brokers, as };
}

describe('the audit topic', () => {
  it('holds every disk record with the same hash: a denial and an ACL change; the chain verifies from the topic', async () => {
    const { dataDir, brokers, as } = await startSecured('__audit');
    const alice = await as('alice', 'alice-secret');
    const admin = await as('admin', 'admin-secret');
    const denied = await alice.admin
      .createTopic({ name: 'orders', partitions: 1 })
      .catch((e: unknown) => e as MemoryStreamerError);
    expect(denied).toMatchObject({ codeName: 'AUTHORIZATION_FAILED' });
    await admin.admin.createAcls([
      {
        principal: 'User:alice',
        resourceType: 'topic',
        resourceName: 'orders',
        pattern: 'literal',
        operation: 'create',
        permission: 'allow',
      },
    ]);
    await alice.admin.createTopic({ name: 'orders', partitions: 1 });

    const onDisk = () => tailAuditLog({ dir: join(dataDir, 'audit') }, 1000);
    let messages: { key: string; value: string }[] = [];
    await until(async () => {
      messages = await readAll(admin, '__audit');
      return messages.length === onDisk().length && messages.length > 0;
    }, 10_000);
    const disk = onDisk();
    // The same records in the same order: the line of each is the value, its action the key.
    expect(messages.map((m) => JSON.parse(m.value).hash)).toEqual(disk.map((r) => r.hash));
    expect(messages.map((m) => m.key)).toEqual(disk.map((r) => r.action));
    const byAction = (action: string): AuditRecord | undefined => disk.find((r) => r.action === action);
    expect(byAction('authz.create')).toMatchObject({
      principal: 'User:alice',
      resource: 'topic:orders',
      result: 'denied',
    });
    expect(byAction('acl.add')).toMatchObject({ principal: 'User:admin', result: 'success' });
    expect(byAction('acl.add')?.detail).toMatchObject({
      entries: ['allow User:alice create topic:orders'],
    });

    const report = verifyAuditChain(messages.map((m, i) => ({ line: m.value, where: `offset ${i}` })));
    expect(report).toMatchObject({ broken: null, records: disk.length, lastHash: disk.at(-1)!.hash });

    // From the CLI, as the super-user.
    const asAdmin = { MEMORYSTREAMER_CLI_USER: 'admin', MEMORYSTREAMER_PASSWORD: 'admin-secret' };
    const verified = await cli(
      asAdmin,
      '--json',
      '--broker',
      brokers,
      'audit',
      'verify',
      '--topic',
      '__audit',
    );
    expect(verified.err).toBe('');
    // The CLI's own login is recorded too, and may be in the topic by the time it reads it.
    expect(JSON.parse(verified.out)).toMatchObject({ intact: true, firstSeq: disk[0]!.seq });
    expect(JSON.parse(verified.out).records).toBeGreaterThanOrEqual(disk.length);
    await alice.close();
    await admin.close();
  });

  it('cannot be written over the wire, is hidden from topic lists, and is read only with a permission', async () => {
    const { as } = await startSecured('__audit');
    const alice = await as('alice', 'alice-secret');
    const admin = await as('admin', 'admin-secret');
    const producer = alice.producer();
    const produced = await producer
      .send({ topic: '__audit', value: Buffer.from('{"forged":true}') })
      .catch((e: unknown) => e as MemoryStreamerError);
    expect(['AUTHORIZATION_FAILED', 'INVALID_TOPIC_NAME']).toContain(
      (produced as MemoryStreamerError).codeName,
    );
    await producer.close();
    // Not even a super-user writes to it: only the broker does.
    const adminProducer = admin.producer();
    const forged = await adminProducer
      .send({ topic: '__audit', value: Buffer.from('{"forged":true}') })
      .catch((e: unknown) => e as MemoryStreamerError);
    expect(forged).toMatchObject({ codeName: 'INVALID_TOPIC_NAME' });
    await adminProducer.close();

    expect((await alice.admin.listTopics()).map((t) => t.name)).not.toContain('__audit');
    expect((await admin.admin.listTopics()).map((t) => t.name)).not.toContain('__audit');
    const read = await readAll(alice, '__audit').catch((e: unknown) => e as MemoryStreamerError);
    expect(read).toMatchObject({ codeName: 'AUTHORIZATION_FAILED' });
    expect((await readAll(admin, '__audit')).length).toBeGreaterThan(0);
    await alice.close();
    await admin.close();
  });

  it('detects a record edited in a copy of the topic (audit verify --topic exits 1)', async () => {
    const { brokers, as } = await startSecured('__audit');
    const admin = await as('admin', 'admin-secret');
    await admin.admin.createTopic({ name: 'audit-copy', partitions: 1 });
    await admin.admin.createTopic({ name: 'two', partitions: 1 });
    await admin.admin.deleteTopic('two');
    let messages: { key: string; value: string }[] = [];
    await until(async () => {
      messages = await readAll(admin, '__audit');
      return messages.some((m) => m.key === 'topic.delete');
    }, 10_000);
    // A copy with one record changed: the principal of the deletion.
    const producer = admin.producer();
    for (const m of messages) {
      const value = m.key === 'topic.delete' ? m.value.replace('"User:admin"', '"User:alice"') : m.value;
      await producer.send({ topic: 'audit-copy', key: Buffer.from(m.key), value: Buffer.from(value) });
    }
    await producer.close();
    const asAdmin = { MEMORYSTREAMER_CLI_USER: 'admin', MEMORYSTREAMER_PASSWORD: 'admin-secret' };
    const intact = await cli(asAdmin, '--broker', brokers, 'audit', 'verify', '--topic', '__audit');
    expect(intact.code).toBe(0);
    const tampered = await cli(asAdmin, '--broker', brokers, 'audit', 'verify', '--topic', 'audit-copy');
    expect(tampered.code).toBe(1);
    expect(tampered.err).toMatch(/AUDIT_CHAIN_BROKEN.*audit-copy\/0 offset \d+: the record was changed/);
    await admin.close();
  });

  it('copies at start the records the disk log got while the broker was stopped', async () => {
    const { dataDir, broker, as } = await startSecured('__audit');
    const admin = await as('admin', 'admin-secret');
    await admin.admin.createTopic({ name: 'before', partitions: 1 });
    await until(async () => (await readAll(admin, '__audit')).some((m) => m.key === 'topic.create'), 10_000);
    await admin.close();
    await broker.stop();
    // An offline change meanwhile (as `memorystreamer user add --data-dir` records it).
    const offline = AuditLog.open({ dir: join(dataDir, 'audit'), fsyncIntervalMs: 0 });
    offline.append({
      principal: null,
      source: 'cli:test',
      action: 'user.add',
      resource: 'user:bob',
      result: 'success',
    });
    offline.close();
    const again = await startEmbeddedBroker({
      dataDir,
      port: 0,
      stopDeadlineMs: 200,
      auth: { mechanisms: ['SCRAM-SHA-256'], superUsers: ['User:admin'], failureDelayMs: 1 },
      authz: { superUsers: ['User:admin'] },
      audit: { topic: '__audit' },
    });
    const client = await connect({
      brokers: `127.0.0.1:${again.address!.port}`,
      sasl: { mechanism: 'SCRAM-SHA-256', username: 'admin', password: 'admin-secret' },
    });
    let messages: { key: string; value: string }[] = [];
    await until(async () => {
      messages = await readAll(client, '__audit');
      return messages.some((m) => m.key === 'user.add');
    }, 10_000);
    const report = verifyAuditChain(messages.map((m, i) => ({ line: m.value, where: `offset ${i}` })));
    expect(report.broken).toBeNull();
    const disk = tailAuditLog({ dir: join(dataDir, 'audit') }, 1000);
    expect(messages.map((m) => JSON.parse(m.value).hash)).toEqual(
      disk.slice(0, messages.length).map((r) => r.hash),
    );
    await client.close();
  });

  it('is refused at start with a name that is not internal, or without authorization', async () => {
    const dataDir = await tempDir('ms-audit-topic-refused-');
    await addUser(dataDir, 'admin', 'admin-secret');
    const auth = { mechanisms: ['SCRAM-SHA-256' as const], superUsers: ['User:admin'] };
    await expect(
      startEmbeddedBroker({
        dataDir,
        port: 0,
        auth,
        authz: { superUsers: ['User:admin'] },
        audit: { topic: 'audit' },
      }),
    ).rejects.toThrow(/audit.topic = "audit": the audit topic is internal/);
    await expect(
      startEmbeddedBroker({ dataDir, port: 0, auth, audit: { topic: '__audit' } }),
    ).rejects.toThrow(/audit.topic needs authz.enabled = true/);
  });
});

describe('AuditLog.onAppended and AuditTopicWriter', () => {
  it('tell the topic of records another process appended, in chain order', async () => {
    const dir = join(await tempDir('ms-audit-foreign-'), 'audit');
    const seen: AuditRecord[] = [];
    const broker = AuditLog.open({ dir, fsyncIntervalMs: 0, onAppended: (r) => seen.push(r) });
    const offline = AuditLog.open({ dir, fsyncIntervalMs: 0 });
    const event = (action: string) => ({
      principal: null,
      source: 'test',
      action,
      resource: null,
      result: 'success' as const,
    });
    broker.append(event('one'));
    offline.append(event('two'));
    offline.append(event('three'));
    broker.append(event('four'));
    broker.close();
    offline.close();
    expect(seen.map((r) => [r.seq, r.action])).toEqual([
      [1, 'one'],
      [2, 'two'],
      [3, 'three'],
      [4, 'four'],
    ]);
  });

  it('tell them on follow() too, without an append of this process', async () => {
    const dir = join(await tempDir('ms-audit-follow-'), 'audit');
    const seen: number[] = [];
    const broker = AuditLog.open({ dir, fsyncIntervalMs: 0, onAppended: (r) => seen.push(r.seq) });
    const offline = AuditLog.open({ dir, fsyncIntervalMs: 0 });
    const event = {
      principal: null,
      source: 'test',
      action: 'x',
      resource: null,
      result: 'success' as const,
    };
    broker.follow();
    expect(seen).toEqual([]);
    offline.append(event);
    offline.append(event);
    broker.follow();
    broker.follow();
    broker.append(event);
    broker.close();
    offline.close();
    expect(seen).toEqual([1, 2, 3]);
  });

  it('tell them across files that another process rotated', async () => {
    const dir = join(await tempDir('ms-audit-foreign-rotated-'), 'audit');
    const seen: number[] = [];
    const broker = AuditLog.open({
      dir,
      fsyncIntervalMs: 0,
      maxFileBytes: 1500,
      onAppended: (r) => seen.push(r.seq),
    });
    const offline = AuditLog.open({ dir, fsyncIntervalMs: 0, maxFileBytes: 1500 });
    const event = {
      principal: null,
      source: 'test',
      action: 'x',
      resource: null,
      result: 'success' as const,
    };
    broker.append(event);
    for (let i = 0; i < 20; i++) offline.append(event);
    broker.append(event);
    broker.close();
    offline.close();
    expect(rotatedAuditFiles(dir).length).toBeGreaterThan(2);
    expect(seen).toEqual(Array.from({ length: 22 }, (_, i) => i + 1));
  });

  it('never throws: a failed write and a full queue are counted, later records still go, in order', async () => {
    const written: string[] = [];
    const lost: string[] = [];
    let fail = true;
    const writer = new AuditTopicWriter({
      maxQueued: 3,
      append: async (messages) => {
        if (fail) throw new Error('disk full');
        written.push(...messages.map((m) => m.value));
      },
      onLost: (count, reason) => lost.push(`${count} ${reason}`),
    });
    const record = (seq: number) => ({ action: `a${seq}` }) as AuditRecord;
    writer.forward(record(1), 'line 1');
    await writer.flushed();
    fail = false;
    // 2 is taken at once by the writing loop; 3, 4 and 5 wait (the queue holds 3); 6 is dropped.
    for (let seq = 2; seq <= 6; seq++) writer.forward(record(seq), `line ${seq}`);
    await writer.close();
    writer.forward(record(7), 'line 7');
    await writer.flushed();
    expect(written).toEqual(['line 2', 'line 3', 'line 4', 'line 5']);
    expect({ written: writer.written, failed: writer.failed, dropped: writer.dropped }).toEqual({
      written: 4,
      failed: 1,
      dropped: 1,
    });
    expect(lost[0]).toMatch(/1 writing to the audit topic failed: disk full/);
    expect(lost[1]).toMatch(/queue is full/);
  });
});
