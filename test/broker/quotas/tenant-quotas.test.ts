// Tenant quotas: the rate limiters of principals and tenants without an open connection are dropped
// once they owe nothing (and their number is capped), on a real broker core; a push subscription
// is held to its principal's fetch quota like fetches are (a real embedded broker with SCRAM, the
// client's push consumer, the rate measured over a few seconds).

import { afterEach, describe, expect, it } from 'vitest';
import { BrokerCore } from '../../../src/broker/broker-core.js';
import { TenantQuotas } from '../../../src/broker/quotas/tenant-quotas.js';
import { connect } from '../../../src/client/connect.js';
import { deriveCredential } from '../../../src/security/credentials.js';
import { TenantStore } from '../../../src/security/tenant-store.js';
import { UserStore } from '../../../src/security/user-store.js';
import { startEmbeddedBroker } from '../../harness/embedded.js';
import { tempDir } from '../../harness/temp-dir.js';

const closing: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closing.splice(0).reverse()) await close().catch(() => undefined);
});

async function quotasOver(principals: number, options: { maxLimiters?: number } = {}) {
  const dataDir = await tempDir('ms-quota-evict-');
  const store = await TenantStore.open(dataDir);
  await store.change({ kind: 'add', tenant: 'acme' });
  await store.change({ kind: 'set-quota', tenant: 'acme', quota: { requestsPerSec: 1000 } });
  for (let i = 0; i < principals; i++)
    await store.change({
      kind: 'set-quota',
      principal: `User:p${i}`,
      quota: { produceBytesPerSec: 1_000_000 },
    });
  await store.change({ kind: 'add-principal', tenant: 'acme', principal: 'User:p0' });
  const core = await BrokerCore.start({ dataDir });
  closing.push(() => core.close());
  const quotas = await TenantQuotas.open({
    core,
    dataDir,
    isSuperUser: () => false,
    refreshMs: 3_600_000,
    limiterIdleMs: 0,
    ...options,
  });
  closing.push(async () => quotas.close());
  return quotas;
}

describe('rate limiters of tenant quotas', () => {
  it('are dropped once their principal has no connection and they owe nothing; held ones stay', async () => {
    const quotas = await quotasOver(20);
    const connections = Array.from({ length: 20 }, () => ({}));
    const now = Date.now();
    for (let i = 0; i < 20; i++) {
      quotas.admitConnection(connections[i]!, `User:p${i}`);
      quotas.charge(`User:p${i}`, 'produce', 1000, now);
    }
    quotas.charge('User:p0', 'requests', 1, now); // the tenant's shared limiter
    expect(quotas.limiterCount).toBe(21);
    await quotas.refresh();
    expect(quotas.limiterCount).toBe(21); // all connected
    for (let i = 1; i < 20; i++) quotas.releaseConnection(connections[i]!);
    // p1 owes 5 seconds of its rate: dropping its limiter would let it through at once.
    quotas.charge('User:p1', 'produce', 5_000_000, Date.now());
    await quotas.refresh();
    // p0 (connected, with its tenant's limiter) and p1 (owing) remain.
    expect(quotas.limiterCount).toBe(3);
    expect(quotas.viewCount).toBe(1);
    quotas.releaseConnection(connections[0]!);
    await quotas.refresh();
    expect(quotas.limiterCount).toBe(1);
    expect(quotas.charge('User:p1', 'produce', 1000, Date.now())).toBeGreaterThan(4000);
  });

  it('are capped: past the cap, those of principals without a connection are dropped', async () => {
    const quotas = await quotasOver(50, { maxLimiters: 8 });
    for (let i = 0; i < 50; i++) {
      quotas.charge(`User:p${i}`, 'produce', 100, Date.now());
      expect(quotas.limiterCount).toBeLessThanOrEqual(8);
    }
  });
});

describe('push subscriptions and the fetch quota', () => {
  it('hold a push consumer over its fetch bytes/s quota to it within 10%', async () => {
    const dataDir = await tempDir('ms-quota-push-');
    const users = await UserStore.open(dataDir);
    await users.change({
      kind: 'add',
      name: 'alice',
      credentials: { 'SCRAM-SHA-256': deriveCredential('SCRAM-SHA-256', 'alice-secret', 4096) },
    });
    const tenants = await TenantStore.open(dataDir);
    await tenants.change({ kind: 'add', tenant: 'acme' });
    await tenants.change({ kind: 'add-principal', tenant: 'acme', principal: 'User:alice' });
    const quota = 200_000;
    await tenants.change({ kind: 'set-quota', tenant: 'acme', quota: { fetchBytesPerSec: quota } });
    const broker = await startEmbeddedBroker({
      dataDir,
      port: 0,
      stopDeadlineMs: 200,
      auth: { mechanisms: ['SCRAM-SHA-256'] },
    });
    const client = await connect({
      brokers: `127.0.0.1:${broker.address!.port}`,
      sasl: { mechanism: 'SCRAM-SHA-256', username: 'alice', password: 'alice-secret' },
    });
    closing.push(() => client.close());
    await client.admin.createTopic({ name: 'feed', partitions: 1 });
    const producer = client.producer();
    const value = Buffer.alloc(1000, 0x61);
    // 2 MB: ten seconds at the quota, far more than the window below reads.
    for (let i = 0; i < 400; i++)
      await producer.sendMany(Array.from({ length: 5 }, () => ({ topic: 'feed', value })));
    await producer.close();

    const consumer = client.consumer({ topics: ['feed'], from: 'earliest', creditBytes: 32 * 1024 });
    closing.push(() => consumer.close());
    // Bytes received between 1 s and 5 s after the first message: the steady rate, past the burst.
    let first = 0;
    let inWindow = 0;
    // Ends the loop also when the messages stop coming (all of them read before the window ends).
    const stop = setTimeout(() => void consumer.close(), 7000);
    closing.push(async () => clearTimeout(stop));
    for await (const message of consumer) {
      const now = performance.now();
      if (first === 0) first = now;
      const since = now - first;
      if (since >= 1000 && since < 5000) inWindow += message.value?.length ?? 0;
      if (since >= 5000) break;
    }
    const rate = inWindow / 4;
    // Values only (the quota also counts the batches' headers, about 2% here).
    expect(rate).toBeLessThan(quota * 1.1);
    expect(rate).toBeGreaterThan(quota * 0.85);
  }, 30_000);
});
