// Cluster-wide configuration on a real etcd with broker nodes in this process, each with its
// cluster member, its configuration part and the running configuration `serve` keeps: a setting
// set through one broker changes the running setting on every broker, the history lists it, a
// rollback restores it everywhere, a broker that joins later takes the current version at start,
// topic alters are versions of their own that roll back through the controller, and bad input
// is refused with its code. A broker without a cluster refuses the commands.

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerNode } from '../../../src/broker/broker-node.js';
import { loadConfig } from '../../../src/broker/config/load-config.js';
import { RunningConfig } from '../../../src/cli/commands/serve.js';
import { run } from '../../../src/cli/main.js';
import type { Client } from '../../../src/client/client.js';
import { connect } from '../../../src/client/connect.js';
import { clusterPart } from '../../../src/cluster/cluster-node.js';
import { clusterConfigPart } from '../../../src/cluster/config/cluster-config-part.js';
import { MemoryStreamerError } from '../../../src/common/errors.js';
import { createLogger } from '../../../src/metrics/logger.js';
import type { ConfigVersionView } from '../../../src/protocol/commands/config-commands.js';
import { type EtcdProcess, etcdAvailable, freePort, startEtcd } from '../../harness/etcd.js';
import { makeTempDir, removeTempDir } from '../../harness/temp-dir.js';
import { until } from '../../harness/until.js';

let etcd: EtcdProcess;
let root: string;
let cluster: string;
const nodes: BrokerNode[] = [];
const logs: string[][] = [];
const clients: Client[] = [];

async function startBroker(brokerId: number): Promise<BrokerNode> {
  const port = await freePort();
  const lines: string[] = [];
  const stream = new PassThrough();
  stream.on('data', (chunk: Buffer) => lines.push(...chunk.toString('utf8').split('\n').filter(Boolean)));
  const logger = createLogger({ level: 'info', pretty: false, stream });
  const running = new RunningConfig(await loadConfig({}), {}, logger);
  const node = await BrokerNode.start(
    { dataDir: join(root, `b${brokerId}`), port, brokerId, memoryTrim: false, raiseFileLimit: false, logger },
    [
      clusterPart({ cluster, brokerId, advertise: `127.0.0.1:${port}`, leaseTtlSeconds: 2 }),
      clusterConfigPart({
        cluster,
        brokerId,
        onVersion: (version) => running.clusterVersionChanged(version),
      }),
    ],
  );
  running.attach(node);
  nodes.push(node);
  logs.push(lines);
  return node;
}

async function cli(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(argv, { env: {}, out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

function address(node: BrokerNode): string {
  return `127.0.0.1:${node.address!.port}`;
}

async function refusal(call: Promise<unknown>): Promise<MemoryStreamerError> {
  const error = await call.then(
    () => null,
    (failure: unknown) => failure,
  );
  expect(error).toBeInstanceOf(MemoryStreamerError);
  return error as MemoryStreamerError;
}

describe.skipIf(!etcdAvailable())('cluster-wide configuration: brokers on etcd', () => {
  beforeAll(async () => {
    etcd = await startEtcd();
    root = await makeTempDir('ms-cluster-config-');
    cluster = `${etcd.endpoint.replace('http://', 'etcd://')}/config`;
    for (const brokerId of [1, 2]) await startBroker(brokerId);
    for (const node of nodes) clients.push(await connect({ brokers: address(node) }));
  }, 60_000);
  afterAll(async () => {
    for (const client of clients) await client.close();
    for (const node of nodes) await node.stop({ deadlineMs: 500 });
    await etcd?.stop();
    if (root !== undefined) await removeTempDir(root);
  });

  it('config set through one broker changes the running setting on every broker; rollback restores it', async () => {
    const limits = () => nodes.map((node) => node.server!.limits);
    expect(limits().map((l) => l.maxConnectionsPerAddress)).toEqual([1024, 1024]);

    const set = await cli(
      '--broker',
      address(nodes[1]!),
      'config',
      'set',
      'server.max_connections_per_address=70',
      'server.idle_timeout=45s',
      '--note',
      'tighter',
    );
    expect(set.code, set.err).toBe(0);
    expect(set.out).toMatch(/configuration version 1: server\.idle_timeout: \(unset\) -> 45000/);
    await until(async () =>
      limits().every((l) => l.maxConnectionsPerAddress === 70 && l.idleTimeoutMs === 45_000) ? true : null,
    );
    // Each broker logs the change, as a reload of its file would be, naming the cluster as the source.
    for (const lines of logs) {
      const reloads = lines
        .map((line) => JSON.parse(line) as { msg: string; clusterVersion?: number; fromCluster?: string })
        .filter((entry) => entry.msg === 'configuration reloaded');
      expect(reloads).toContainEqual(
        expect.objectContaining({
          clusterVersion: 1,
          fromCluster: 'server.max_connections_per_address,server.idle_timeout',
        }),
      );
    }

    const second = await clients[0]!.admin.configSet({ 'server.max_connections_per_address': 90 });
    expect(second).toMatchObject({
      version: 2,
      topic: null,
      note: 'set server.max_connections_per_address',
      changes: [{ key: 'server.max_connections_per_address', from: 70, to: 90 }],
      settings: { 'server.max_connections_per_address': 90, 'server.idle_timeout': 45_000 },
    });
    await until(async () => (limits().every((l) => l.maxConnectionsPerAddress === 90) ? true : null));

    // A broker that joins later takes the current version at start.
    const late = await startBroker(3);
    clients.push(await connect({ brokers: address(late) }));
    await until(async () =>
      late.server!.limits.maxConnectionsPerAddress === 90 && late.server!.limits.idleTimeoutMs === 45_000
        ? true
        : null,
    );

    const rollback = await cli('--broker', address(late), 'config', 'rollback', '--to', '1');
    expect(rollback.code, rollback.err).toBe(0);
    expect(rollback.out).toMatch(/configuration version 3 \(rollback to version 1\)/);
    await until(async () => (limits().every((l) => l.maxConnectionsPerAddress === 70) ? true : null));

    const history = JSON.parse(
      (await cli('--json', '--broker', address(nodes[0]!), 'config', 'history')).out,
    ) as ConfigVersionView[];
    expect(history.map((v) => [v.version, v.note])).toEqual([
      [1, 'tighter'],
      [2, 'set server.max_connections_per_address'],
      [3, 'rollback to version 1'],
    ]);
    expect(history[0]!.changedBy).toMatch(/^.+@.+ via broker 2$/);
    expect(history[2]!.changes).toEqual([{ key: 'server.max_connections_per_address', from: 90, to: 70 }]);
    const human = await cli('--broker', address(nodes[0]!), 'config', 'history', '--brokers');
    expect(human.out).toMatch(/version\s+scope\s+when\s+by\s+changes\s+note/i);
    expect(human.out).toMatch(
      /3\s+brokers\s+\S+Z\s+.+server\.max_connections_per_address: 90 -> 70\s+rollback to version 1/,
    );
  }, 60_000);

  it('refuses unknown and restart-only keys, bad values and missing versions, and changes nothing', async () => {
    const admin = clients[1]!.admin;
    const before = (await admin.configHistory()).length;
    expect((await refusal(admin.configSet({ 'server.nope': 1 }))).codeName).toBe('INVALID_CONFIG');
    const restartOnly = await refusal(admin.configSet({ 'server.port': 7500 }));
    expect(restartOnly.codeName).toBe('CONFIG_NOT_RELOADABLE');
    expect(restartOnly.code).toBe(731);
    const bad = await refusal(admin.configSet({ 'server.idle_timeout': 'soon' }));
    expect(bad.codeName).toBe('INVALID_CONFIG');
    expect(bad.message).toMatch(/\(server\.idle_timeout\) "soon": expected a duration/);
    const missing = await refusal(admin.configRollback(999));
    expect(missing.codeName).toBe('UNKNOWN_CONFIG_VERSION');
    expect((await admin.configHistory()).length).toBe(before);
    // The CLI says so with the code and a non-zero exit.
    const cliBad = await cli('--broker', address(nodes[0]!), 'config', 'set', 'server.port=1');
    expect(cliBad.code).not.toBe(0);
    expect(cliBad.err).toMatch(/CONFIG_NOT_RELOADABLE|731/);
    expect((await cli('--broker', address(nodes[0]!), 'config', 'set', 'no-equals')).code).not.toBe(0);
  });

  it('records topic alters as versions of the topic and rolls them back through the controller', async () => {
    const controllerId = (await clients[0]!.admin.metadata()).controllerId;
    // Brokers 1, 2, 3 were started in that order, each with its client.
    const controller = clients[controllerId - 1]!;
    await controller.admin.createTopic({ name: 'orders', partitions: 1, replicationFactor: 3 });
    const original = (await controller.admin.describeTopic('orders')).topic.config.retentionMs;
    await controller.admin.alterTopic({ name: 'orders', config: { retentionMs: 3_600_000 } });
    await until(async () =>
      nodes.every((node) => node.core.localTopic('orders')?.config.retentionMs === 3_600_000) ? true : null,
    );
    const topicHistory = await controller.admin.configHistory('orders');
    expect(topicHistory.map((v) => [v.note, v.settings.retentionMs])).toEqual([
      ['before the first recorded change', original],
      ['alter retentionMs', 3_600_000],
    ]);
    expect(topicHistory[1]!.changes).toEqual([{ key: 'retentionMs', from: original, to: 3_600_000 }]);
    // The brokers' settings are a scope of their own: the topic's versions are not in it.
    expect((await controller.admin.configHistory(null)).every((v) => v.topic === null)).toBe(true);

    // Only the controller alters topics: another broker asked directly names it.
    const other = nodes.find((_, index) => index !== controllerId - 1)!;
    expect(
      (await refusal(other.core.execute('configRollback', { version: topicHistory[0]!.version }))).codeName,
    ).toBe('NOT_CONTROLLER');
    const rolled = await controller.admin.configRollback(topicHistory[0]!.version);
    expect(rolled).toMatchObject({
      topic: 'orders',
      note: `rollback to version ${topicHistory[0]!.version}`,
    });
    await until(async () =>
      nodes.every((node) => node.core.localTopic('orders')?.config.retentionMs === original) ? true : null,
    );
    const human = await cli('--broker', address(nodes[0]!), 'config', 'history', '--topic', 'orders');
    expect(human.out, human.err).toMatch(/topic orders.*retentionMs: 3600000 -> /);
  }, 60_000);

  it('config print shows the values the cluster sets with the source cluster', async () => {
    const file = join(root, 'broker.toml');
    await writeFile(file, `[cluster]\netcd = "${cluster}"\n[server]\nmax_connections_per_address = 3\n`);
    const printed = JSON.parse((await cli('--json', 'config', 'print', '--config', file)).out) as Array<{
      key: string;
      value: unknown;
      source: string;
    }>;
    expect(printed.find((row) => row.key === 'server.max_connections_per_address')).toEqual({
      key: 'server.max_connections_per_address',
      value: 70,
      source: 'cluster',
    });
    expect(printed.find((row) => row.key === 'cluster.etcd')?.source).toBe('file');
    expect(printed.find((row) => row.key === 'server.max_connections')?.source).toBe('default');
  });
});

describe('cluster-wide configuration: a broker alone', () => {
  it('refuses set, history and rollback with CLUSTER_CONFIG_NEEDS_CLUSTER', async () => {
    const dir = await makeTempDir('ms-config-alone-');
    const node = await BrokerNode.start({ dataDir: dir, port: 0, memoryTrim: false, raiseFileLimit: false });
    const client = await connect({ brokers: address(node) });
    try {
      for (const call of [
        client.admin.configSet({ 'log.level': 'debug' }),
        client.admin.configHistory(),
        client.admin.configRollback(1),
      ]) {
        const error = await refusal(call);
        expect(error.codeName).toBe('CLUSTER_CONFIG_NEEDS_CLUSTER');
        expect(error.code).toBe(730);
      }
    } finally {
      await client.close();
      await node.stop({ deadlineMs: 500 });
      await removeTempDir(dir);
    }
  });
});
