import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Broker } from '../../../src/embedded/broker.js';
import { makeTempDir, removeTempDir } from '../../harness/temp-dir.js';

let dataDir: string;
let broker: Broker;
let base: string;

beforeAll(async () => {
  dataDir = await makeTempDir('ms-admin-');
  broker = await Broker.start({ dataDir, port: 0, admin: { port: 0 } });
  base = `http://127.0.0.1:${broker.admin!.address.port}`;
  const client = broker.connect();
  await client.admin.createTopic({ name: 'web', partitions: 2 });
  await client
    .producer()
    .sendMany(Array.from({ length: 50 }, (_, i) => ({ topic: 'web', key: `k${i}`, value: 'x' })));
  await client.admin.createTopic({ name: 'other' });
  await client.admin.createTopic({ name: 'durable', config: { durability: 'always' } });
  await client.producer().send({ topic: 'durable', value: 'synced before the ack' });
  const consumer = client.consumer({ topics: ['web'], group: 'dash', sessionTimeoutMs: 10_000 });
  let n = 0;
  for await (const _ of consumer) if (++n === 20) break;
  await client.close();
});
afterAll(async () => {
  await broker.stop();
  await removeTempDir(dataDir);
});

async function get(path: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  const response = await fetch(`${base}${path}`, { method });
  return {
    status: response.status,
    type: response.headers.get('content-type') ?? '',
    body: await response.text(),
  };
}

describe('admin HTTP endpoint', () => {
  it('serves Prometheus metrics that reflect the traffic', async () => {
    const metrics = await get('/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.type).toContain('text/plain');
    expect(metrics.body).toMatch(/memorystreamer_produce_messages_total 51/);
    expect(metrics.body).toMatch(/memorystreamer_requests_total\{operation="produce"\} \d+/);
    expect(metrics.body).toMatch(
      /memorystreamer_request_duration_seconds_bucket\{le="0.001",operation="createTopic"\}/,
    );
    expect(metrics.body).toMatch(/memorystreamer_partition_high_watermark\{topic="web",partition="\d"\} \d+/);
    expect(metrics.body).toMatch(/memorystreamer_partition_log_end_offset\{topic="web",partition="\d"\} \d+/);
    expect(metrics.body).toMatch(
      /memorystreamer_group_lag_messages\{group="dash",topic="web",partition="\d"\} \d+/,
    );
    expect(metrics.body).toMatch(/memorystreamer_connections \d+/);
    expect(metrics.body).toMatch(
      /memorystreamer_storage_fsync_duration_seconds_count\{cause="append"\} [1-9]/,
    );
    expect(metrics.body).toMatch(/memorystreamer_throttle_events_total 0/);
    expect(metrics.body).toMatch(/memorystreamer_process_resident_memory_bytes \d+/);
    expect(metrics.body).toMatch(/memorystreamer_nodejs_eventloop_lag_p99_seconds /);
    expect(metrics.body).toMatch(
      /memorystreamer_request_errors_total\{operation="[a-zA-Z]+",code="[A-Z_]+"\}|memorystreamer_request_errors_total counter/,
    );
  });

  it('answers health, readiness and the JSON API, with JSON errors', async () => {
    expect(JSON.parse((await get('/healthz')).body)).toEqual({ status: 'ok' });
    expect((await get('/readyz')).status).toBe(200);
    const topics = JSON.parse((await get('/api/topics')).body) as { topics: Array<{ name: string }> };
    expect(topics.topics.map((t) => t.name)).toEqual(['durable', 'other', 'web']);
    const web = JSON.parse((await get('/api/topics/web')).body) as {
      partitions: Array<{ highWatermark: string; logEndOffset: string }>;
    };
    expect(web.partitions.reduce((n, p) => n + Number(p.highWatermark), 0)).toBe(50);
    // A broker alone: everything appended is written, so the log ends where consumers read up to.
    expect(web.partitions.reduce((n, p) => n + Number(p.logEndOffset), 0)).toBe(50);
    const groups = JSON.parse((await get('/api/groups')).body) as { groups: Array<{ groupId: string }> };
    expect(groups.groups.map((g) => g.groupId)).toEqual(['dash']);
    const dash = JSON.parse((await get('/api/groups/dash')).body) as { lag: unknown[] };
    expect(dash.lag.length).toBeGreaterThan(0);
    const missing = await get('/api/topics/nope');
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body)).toMatchObject({ error: { code: 300, name: 'UNKNOWN_TOPIC' } });
    expect((await get('/api/nothing')).status).toBe(404);
    expect((await get('/api/topics', 'POST')).status).toBe(405);
  });

  it('answers HEAD like GET, without a body, on every GET route', async () => {
    for (const path of [
      '/',
      '/status',
      '/status.js',
      '/api/status',
      '/metrics',
      '/healthz',
      '/readyz',
      '/api/topics',
      '/api/topics/web',
      '/api/topics/nope',
      '/api/groups',
      '/api/groups/dash',
      '/api/nothing',
    ]) {
      const [asGet, asHead] = await Promise.all([get(path), get(path, 'HEAD')]);
      expect({ path, status: asHead.status, type: asHead.type }).toEqual({
        path,
        status: asGet.status,
        type: asGet.type,
      });
      expect(asHead.body).toBe('');
    }
    const head = await fetch(`${base}/`, { method: 'HEAD' });
    expect(head.headers.get('content-security-policy')).toMatch(/default-src 'none'/);
    const post = await fetch(`${base}/healthz`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('serves the status snapshot and the status page under a strict content policy', async () => {
    const status = JSON.parse((await get('/api/status')).body) as {
      brokerId: string;
      connections: number;
      metrics: {
        producedMessages: number;
        fetchedBytes: number;
        requests: number;
        latency: { bucketsSeconds: number[]; operations: Record<string, number[]> };
      };
      topics: Array<{ name: string; partitions: number; messages: number; endOffsets: number }>;
      groups: Array<{ groupId: string; lag: number }>;
    };
    expect(status.brokerId).toBe(broker.core.id);
    expect(status.metrics.producedMessages).toBe(51);
    expect(status.metrics.requests).toBeGreaterThan(0);
    // The group consumer of the setup read by push subscription: those bytes count as fetched.
    expect(status.metrics.fetchedBytes).toBeGreaterThan(0);
    const produce = status.metrics.latency.operations.produce!;
    expect(produce).toHaveLength(status.metrics.latency.bucketsSeconds.length + 1);
    // Cumulative buckets never decrease, and the last (+Inf) counts every produce request.
    for (let i = 1; i < produce.length; i++) expect(produce[i]).toBeGreaterThanOrEqual(produce[i - 1]!);
    expect(produce.at(-1)).toBeGreaterThan(0);
    expect(status.topics).toEqual([
      expect.objectContaining({ name: 'durable', messages: 1 }),
      { name: 'other', partitions: 1, messages: 0, endOffsets: 0, sizeBytes: 0 },
      expect.objectContaining({ name: 'web', partitions: 2, messages: 50, endOffsets: 50 }),
    ]);
    expect(status.groups).toEqual([expect.objectContaining({ groupId: 'dash' })]);
    expect(status.groups[0]!.lag).toBeGreaterThan(0);

    const html = await fetch(`${base}/`);
    expect(html.headers.get('content-type')).toContain('text/html');
    expect(html.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await html.text()).toContain('<script src="status.js"></script>');
    const script = await get('/status.js');
    expect(script.type).toContain('text/javascript');
    expect(script.body).toContain("fetch('api/status'");
  });

  it('records nothing on the request path while metrics are off', async () => {
    const before = JSON.parse((await get('/api/status')).body) as { metrics: { requests: number } };
    broker.core.metrics.enabled = false;
    try {
      const client = broker.connect();
      await client.producer().send({ topic: 'other', value: 'quiet' });
      await client.close();
      const after = JSON.parse((await get('/api/status')).body) as {
        metrics: { requests: number; producedMessages: number };
        topics: Array<{ name: string; messages: number }>;
      };
      expect(after.metrics.requests).toBe(before.metrics.requests);
      expect(after.metrics.producedMessages).toBe(51);
      // State gauges still answer: the message is there.
      expect(after.topics.find((t) => t.name === 'other')!.messages).toBe(1);
    } finally {
      broker.core.metrics.enabled = true;
    }
  });

  it('answers unparsable paths with 400 and keeps serving', async () => {
    const { connect: tcp } = await import('node:net');
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = tcp({ host: '127.0.0.1', port: broker.admin!.address.port }, () =>
        socket.end('GET //[ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
      );
      let text = '';
      socket.on('data', (d: Buffer) => (text += d.toString()));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    expect(raw).toMatch(/^HTTP\/1\.1 400/);
    expect(raw).toContain('BAD_REQUEST');
    expect((await get('/api/topics/%E0')).status).toBe(400);
    expect((await get('/healthz')).status).toBe(200);
    const redirected = await fetch(`${base}/status/`, { redirect: 'manual' });
    expect(redirected.status).toBe(301);
    expect(redirected.headers.get('location')).toBe('/status');
  });
});

describe('admin connections', () => {
  it('are capped at the admin share of file descriptors; the port answers again when they go', async () => {
    const { connect: netConnect } = await import('node:net');
    const { ADMIN_RESERVE } = await import('../../../src/broker/fd-budget.js');
    const port = broker.admin!.address.port;
    const open = async () =>
      await new Promise<import('node:net').Socket>((resolve, reject) => {
        const socket = netConnect(port, '127.0.0.1', () => resolve(socket));
        socket.once('error', reject);
      });
    const held = [];
    for (let i = 0; i < ADMIN_RESERVE; i++) held.push(await open());
    // Past the cap the server closes a new connection at once, before reading a request.
    const extra = await open();
    const closed = await new Promise<boolean>((resolve) => {
      extra.once('close', () => resolve(true));
      setTimeout(() => resolve(false), 5000);
    });
    expect(closed).toBe(true);
    for (const socket of held) socket.destroy();
    await expect.poll(async () => (await get('/healthz')).status, { timeout: 5000 }).toBe(200);
  });
});
