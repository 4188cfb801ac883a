// Tenants with authorization on, a real broker over TCP: a SUBSCRIBE is checked against the ACLs of
// the stored (tenant-prefixed) topic, as FETCH is, so an entry on a global topic of the same short
// name neither lets a tenant's principal read its own denied topic nor decides for it; and the
// group offsets topic, which holds every tenant's group and topic names, is out of reach and out of
// sight of principals outside the tenants (super-users still read it).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/client/connect.js';
import { TcpTransport } from '../../src/client/tcp-transport.js';
import { Broker } from '../../src/embedded/broker.js';
import { FileAclStore } from '../../src/security/acl-store.js';
import { deriveCredential } from '../../src/security/credentials.js';
import { TenantStore } from '../../src/security/tenant-store.js';
import { UserStore } from '../../src/security/user-store.js';
import { errorCodeOf } from '../harness/error-code.js';
import { useTempDir } from '../harness/temp-dir.js';

const scratch = useTempDir('ms-tenant-acl-order-', 'all');
let broker: Broker;
const transports: TcpTransport[] = [];
const O = { timeoutMs: 10_000 };

function as(user: string): TcpTransport {
  const transport = new TcpTransport({
    brokers: [{ host: '127.0.0.1', port: broker.address!.port }],
    sasl: { mechanism: 'SCRAM-SHA-256', username: user, password: `${user}-secret` },
  });
  transports.push(transport);
  return transport;
}

beforeAll(async () => {
  const dataDir = scratch.path;
  const users = await UserStore.open(dataDir);
  for (const name of ['alice', 'admin', 'carol'])
    await users.change({
      kind: 'add',
      name,
      credentials: { 'SCRAM-SHA-256': deriveCredential('SCRAM-SHA-256', `${name}-secret`, 4096) },
    });
  await users.close();
  const tenants = await TenantStore.open(dataDir);
  await tenants.change({ kind: 'add', tenant: 'acme' });
  await tenants.change({ kind: 'add-principal', tenant: 'acme', principal: 'User:alice' });
  const entry = (principal: string, resourceName: string, operation: string, permission: string) => ({
    principal,
    resourceType: 'topic',
    resourceName,
    pattern: 'literal',
    operation,
    permission,
  });
  const acls = await FileAclStore.open(dataDir);
  await acls.change({
    kind: 'add',
    entries: [
      // alice may read every topic but her tenant's "secret", which she may only write.
      entry('User:alice', '*', 'read', 'allow'),
      entry('User:alice', 'acme.secret', 'read', 'deny'),
      entry('User:alice', 'acme.secret', 'write', 'allow'),
      // carol, outside any tenant, may read every topic.
      entry('User:carol', '*', 'read', 'allow'),
    ] as never,
  });
  broker = await Broker.start({
    dataDir,
    port: 0,
    auth: { mechanisms: ['SCRAM-SHA-256'], superUsers: ['User:admin'] },
    authz: { superUsers: ['User:admin'] },
  } as never);
  await as('admin').request('createTopic', { name: 'acme.secret', partitions: 1 }, O);
  const client = await connect({
    brokers: `127.0.0.1:${broker.address!.port}`,
    sasl: { mechanism: 'SCRAM-SHA-256', username: 'admin', password: 'admin-secret' },
  });
  await client.producer().send({ topic: 'acme.secret', value: 'top secret' });
  // A group of the tenant commits, so the offsets topic holds its names.
  await client.admin.createTopic({ name: 'acme.orders', partitions: 1 });
  const group = client.consumer({ topics: ['acme.orders'], group: 'acme.billing' });
  await group.start();
  await group.commit();
  await group.close();
  await client.close();
});

afterAll(async () => {
  for (const transport of transports) await transport.close();
  await broker?.stop();
});

describe('tenants and ACLs', () => {
  it('refuses a SUBSCRIBE to a denied topic of the tenant as FETCH is refused', async () => {
    const alice = as('alice');
    const fetch = { topic: 'secret', partition: 0, offset: 0n, maxBytes: 1 << 20, maxWaitMs: 0 };
    expect(await errorCodeOf(alice.request('fetch', fetch, O))).toBe('AUTHORIZATION_FAILED');
    const pushed: Buffer[] = [];
    const subscribe = alice.subscribe(
      { topic: 'secret', partition: 0, offset: 0n, credit: 1 << 20 },
      { onBatches: (batches) => pushed.push(...batches), onError: () => undefined },
      O,
    );
    expect(await errorCodeOf(subscribe)).toBe('AUTHORIZATION_FAILED');
    expect(pushed).toHaveLength(0);
  });

  it('keeps the group offsets topic from principals outside the tenants, not from super-users', async () => {
    const carol = as('carol');
    const fetch = { topic: '__consumer_offsets', partition: 0, offset: 0n, maxBytes: 1 << 20, maxWaitMs: 0 };
    expect(await errorCodeOf(carol.request('fetch', fetch, O))).toBe('AUTHORIZATION_FAILED');
    const listed = await carol.request('metadata', {}, O);
    expect(listed.topics.map((topic) => topic.name)).not.toContain('__consumer_offsets');
    const read = await as('admin').request('fetch', fetch, O);
    expect(read.batches.toString('latin1')).toContain('acme.billing');
  });
});
