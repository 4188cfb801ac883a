// The audit log of a real broker (embedded, port 0, a temporary data directory): every
// authentication (SCRAM success and failure, client certificates), every administrative change
// (topics created, altered, deleted; refused ones too) and every user change over the wire is one
// record naming the principal and the client's address; produce and fetch write none; the chain
// verifies. A broker without authentication keeps no audit log unless told to.

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BrokerNode } from '../../src/broker/broker-node.js';
import { connect } from '../../src/client/connect.js';
import { TcpTransport } from '../../src/client/tcp-transport.js';
import type { MemoryStreamerError } from '../../src/common/errors.js';
import { UserAction, userAlterCommand } from '../../src/protocol/commands/auth-commands.js';
import { AuditLog } from '../../src/security/audit-log.js';
import type { AuditRecord } from '../../src/security/audit-record.js';
import { tailAuditLog, verifyAuditLog } from '../../src/security/audit-verify.js';
import { deriveCredential } from '../../src/security/credentials.js';
import { UserStore } from '../../src/security/user-store.js';
import { makeCertificates, opensslAvailable } from '../broker/server/helpers/certs.js';
import { startEmbeddedBroker } from '../harness/embedded.js';
import { tempDir, useTempDir } from '../harness/temp-dir.js';
import { until } from '../harness/until.js';

async function addUser(dataDir: string, name: string, password: string): Promise<void> {
  const store = await UserStore.open(dataDir);
  await store.change({
    kind: 'add',
    name,
    credentials: { 'SCRAM-SHA-256': deriveCredential('SCRAM-SHA-256', password) },
  });
}

function records(dataDir: string): AuditRecord[] {
  return tailAuditLog({ dir: join(dataDir, 'audit') }, 1000);
}

/** action, result, principal, resource of each record. */
function summary(list: readonly AuditRecord[]): string[][] {
  return list.map((r) => [r.action, r.result, r.principal ?? '-', r.resource ?? '-']);
}

describe('the audit log of a broker with authentication on', () => {
  it('records logins, failed logins, topic changes and user changes, with principal and address', async () => {
    const dataDir = await tempDir('ms-audit-broker-');
    await addUser(dataDir, 'alice', 'alice-secret');
    await addUser(dataDir, 'admin', 'admin-secret');
    const broker = await startEmbeddedBroker({
      dataDir,
      port: 0,
      stopDeadlineMs: 200,
      auth: { mechanisms: ['SCRAM-SHA-256'], superUsers: ['User:admin'], failureDelayMs: 1 },
    });
    const brokers = `127.0.0.1:${broker.address!.port}`;

    const wrong = await connect({
      brokers,
      sasl: { mechanism: 'SCRAM-SHA-256', username: 'alice', password: 'not-it' },
    }).catch((e: unknown) => e as MemoryStreamerError);
    expect(wrong).toMatchObject({ codeName: 'AUTHENTICATION_FAILED' });

    const alice = await connect({
      brokers,
      sasl: { mechanism: 'SCRAM-SHA-256', username: 'alice', password: 'alice-secret' },
    });
    await alice.admin.createTopic({ name: 'orders', partitions: 1 });
    const producer = alice.producer();
    for (let i = 0; i < 20; i++) await producer.send({ topic: 'orders', value: Buffer.from(`m${i}`) });
    await producer.close();
    await alice.admin.alterTopic({ name: 'orders', partitions: 2 });
    const again = await alice.admin
      .createTopic({ name: 'orders', partitions: 1 })
      .catch((e: unknown) => e as MemoryStreamerError);
    expect(again).toMatchObject({ codeName: 'TOPIC_ALREADY_EXISTS' });
    await alice.admin.deleteTopic('orders');

    const transport = (username: string, password: string) =>
      new TcpTransport({
        brokers: [{ host: '127.0.0.1', port: broker.address!.port }],
        sasl: { mechanism: 'SCRAM-SHA-256', username, password },
      });
    const bob = {
      action: UserAction.ADD,
      name: 'bob',
      credentials: [{ mechanism: 'SCRAM-SHA-256', ...deriveCredential('SCRAM-SHA-256', 'bob-secret') }],
    };
    const asAlice = transport('alice', 'alice-secret');
    const refused = await asAlice.call(userAlterCommand, bob, { timeoutMs: 5000 }).catch((e: unknown) => e);
    expect(refused).toMatchObject({ codeName: 'AUTHORIZATION_FAILED' });
    await asAlice.close();
    const asAdmin = transport('admin', 'admin-secret');
    await asAdmin.call(userAlterCommand, bob, { timeoutMs: 5000 });
    await asAdmin.close();
    await alice.close();

    const dir = join(dataDir, 'audit');
    await until(() => records(dataDir).length >= 10, { timeoutMs: 10_000 });
    const written = records(dataDir);
    expect(summary(written)).toEqual([
      ['auth.login', 'failure', '-', 'User:alice'],
      ['auth.login', 'success', 'User:alice', 'User:alice'],
      ['topic.create', 'success', 'User:alice', 'topic:orders'],
      ['topic.alter.partitions', 'success', 'User:alice', 'topic:orders'],
      ['topic.create', 'failure', 'User:alice', 'topic:orders'],
      ['topic.delete', 'success', 'User:alice', 'topic:orders'],
      ['auth.login', 'success', 'User:alice', 'User:alice'],
      ['user.add', 'denied', 'User:alice', 'user:bob'],
      ['auth.login', 'success', 'User:admin', 'User:admin'],
      ['user.add', 'success', 'User:admin', 'user:bob'],
    ]);
    expect(written[0]!.detail).toMatchObject({ error: 'AUTHENTICATION_FAILED' });
    expect(written[1]!.detail).toEqual({ mechanism: 'SCRAM-SHA-256' });
    expect(written[3]!.detail).toEqual({ partitions: 2 });
    expect(written[4]!.detail).toMatchObject({ error: 'TOPIC_ALREADY_EXISTS' });
    for (const r of written) expect(r.source).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(verifyAuditLog({ dir })).toMatchObject({ records: 10, broken: null, torn: null });
  });

  it('records every request the ACLs refuse, with principal, operation, resource and address', async () => {
    const dataDir = await tempDir('ms-audit-denied-');
    await addUser(dataDir, 'alice', 'alice-secret');
    await addUser(dataDir, 'admin', 'admin-secret');
    const broker = await startEmbeddedBroker({
      dataDir,
      port: 0,
      stopDeadlineMs: 200,
      auth: { mechanisms: ['SCRAM-SHA-256'], superUsers: ['User:admin'] },
      authz: { superUsers: ['User:admin'] },
    });
    expect(broker.core.audit).toBeInstanceOf(AuditLog);
    const brokers = `127.0.0.1:${broker.address!.port}`;
    const admin = await connect({
      brokers,
      sasl: { mechanism: 'SCRAM-SHA-256', username: 'admin', password: 'admin-secret' },
    });
    await admin.admin.createTopic({ name: 'orders', partitions: 1 });
    // alice may find the topic (describe), not write to it.
    await admin.admin.createAcls([
      {
        principal: 'User:alice',
        resourceType: 'topic',
        resourceName: 'orders',
        pattern: 'literal',
        operation: 'describe',
        permission: 'allow',
      },
    ]);
    const alice = await connect({
      brokers,
      sasl: { mechanism: 'SCRAM-SHA-256', username: 'alice', password: 'alice-secret' },
    });
    const producer = alice.producer({ retries: 0, idempotent: false });
    await expect(producer.send({ topic: 'orders', value: Buffer.from('x') })).rejects.toMatchObject({
      codeName: 'AUTHORIZATION_FAILED',
    });
    await producer.close();
    await alice.close();
    await admin.close();
    const denied = records(dataDir).filter((r) => r.result === 'denied');
    expect(summary(denied)).toEqual([['authz.write', 'denied', 'User:alice', 'topic:orders']]);
    expect(denied[0]!.source).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(verifyAuditLog({ dir: join(dataDir, 'audit') })).toMatchObject({ broken: null });
  });

  it('does not start when its audit log cannot be opened', async () => {
    const dataDir = await tempDir('ms-audit-bad-');
    await addUser(dataDir, 'alice', 'alice-secret');
    mkdirSync(join(dataDir, 'audit'));
    writeFileSync(join(dataDir, 'audit', 'audit.log'), 'not an audit log\n');
    const refused = await BrokerNode.start({
      dataDir,
      port: 0,
      auth: { mechanisms: ['SCRAM-SHA-256'] },
    }).catch((e: unknown) => e as MemoryStreamerError);
    expect(refused).toMatchObject({ codeName: 'AUDIT_LOG_UNAVAILABLE' });
    expect((refused as MemoryStreamerError).message).toMatch(
      /audit\.log does not start with an audit header/,
    );
    // Nothing was left running: the data directory can be opened again.
    const node = await BrokerNode.start({ dataDir, audit: { enabled: false } });
    await node.stop();
  });

  it('is not kept by a broker without authentication, unless enabled', async () => {
    const open = await startEmbeddedBroker({ port: 0, stopDeadlineMs: 200 });
    const openClient = open.connect();
    await openClient.admin.createTopic({ name: 'plain', partitions: 1 });
    await openClient.close();
    expect(existsSync(join(open.core.dataDir, 'audit'))).toBe(false);

    const dataDir = await tempDir('ms-audit-open-');
    const audited = await startEmbeddedBroker({
      dataDir,
      port: 0,
      stopDeadlineMs: 200,
      audit: { enabled: true },
    });
    const client = await connect({ brokers: `127.0.0.1:${audited.address!.port}` });
    await client.admin.createTopic({ name: 'plain', partitions: 1 });
    await client.close();
    const inProcess = audited.connect();
    await inProcess.admin.deleteTopic('plain');
    await inProcess.close();
    const written = records(dataDir);
    expect(summary(written)).toEqual([
      ['topic.create', 'success', '-', 'topic:plain'],
      ['topic.delete', 'success', '-', 'topic:plain'],
    ]);
    expect(written[0]!.source).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(written[1]!.source).toBe('in-process');
  });
});

describe.skipIf(!opensslAvailable())('the audit log and client certificates', () => {
  const certsDir = useTempDir('ms-audit-certs-', 'all');

  it('records a certificate login as mechanism mtls', async () => {
    const certs = await makeCertificates(certsDir.path);
    const dataDir = await tempDir('ms-audit-mtls-');
    const broker = await startEmbeddedBroker({
      dataDir,
      port: 0,
      stopDeadlineMs: 200,
      tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.ca, clientAuth: 'require' },
      auth: { mechanisms: ['mtls'] },
    });
    const client = await connect({
      brokers: `127.0.0.1:${broker.address!.port}`,
      tls: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey },
    });
    await client.admin.listTopics();
    await client.close();
    const written = records(dataDir);
    expect(summary(written)).toEqual([['auth.login', 'success', 'User:client', 'User:client']]);
    expect(written[0]!.detail).toEqual({ mechanism: 'mtls' });
  });

  it('records configuration reloads: certificates reloaded or refused, and reloads the serve command reports', async () => {
    const certs = await makeCertificates(certsDir.path);
    const dataDir = await tempDir('ms-audit-reload-');
    const node = await BrokerNode.start({
      dataDir,
      port: 0,
      tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.ca, clientAuth: 'require' },
      auth: { mechanisms: ['mtls'] },
    });
    try {
      node.reloadTls({
        cert: certs.otherServerCert,
        key: certs.otherServerKey,
        ca: certs.ca,
        clientAuth: 'require',
      });
      expect(() => node.reloadTls({ cert: 'not a certificate', key: certs.serverKey })).toThrow();
      node.recordReload({ trigger: 'SIGHUP', keys: ['server.max_connections'] });
    } finally {
      await node.stop({ deadlineMs: 0 });
    }
    const written = records(dataDir);
    expect(summary(written)).toEqual([
      ['config.reload', 'success', '-', 'broker'],
      ['config.reload', 'failure', '-', 'broker'],
      ['config.reload', 'success', '-', 'broker'],
    ]);
    expect(written[0]!.detail).toMatchObject({ trigger: 'certificates' });
    expect(written[1]!.detail).toMatchObject({ trigger: 'certificates', error: expect.any(String) });
    expect(written[2]!.detail).toEqual({ trigger: 'SIGHUP', keys: ['server.max_connections'] });
    expect(verifyAuditLog({ dir: join(dataDir, 'audit') }).broken).toBeNull();
  });
});
