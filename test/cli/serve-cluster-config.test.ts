// `serve --cluster` processes with a configuration file, on a real etcd: `config set` through one
// broker reaches every broker's running settings over its file (a cluster value wins for its key),
// a reload of the file keeps the cluster's value for that key and applies the file's other
// changes, `config unset` hands the key back to each broker's file, and `config rollback` restores
// the cluster's value everywhere.

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/cli/main.js';
import type { Client } from '../../src/client/client.js';
import { connect } from '../../src/client/connect.js';
import { type BrokerLogLine, startBroker, type TestBroker } from '../harness/broker.js';
import { type EtcdProcess, etcdAvailable, freePort, startEtcd } from '../harness/etcd.js';
import { makeTempDir, removeTempDir } from '../harness/temp-dir.js';
import { until } from '../harness/until.js';

let etcd: EtcdProcess;
let root: string;
const brokers: TestBroker[] = [];
const files: string[] = [];

async function cli(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(argv, { env: {}, out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

function toml(maxPerAddress: number, idleTimeout: string): string {
  return `[server]\nmax_connections_per_address = ${maxPerAddress}\nidle_timeout = "${idleTimeout}"\n`;
}

/** Opens `count` clients to `port` at once; the number that connected (the others were refused). */
async function connections(port: number, count: number): Promise<number> {
  const clients: Client[] = [];
  try {
    const results = await Promise.allSettled(
      Array.from({ length: count }, () => connect({ brokers: `127.0.0.1:${port}` })),
    );
    for (const result of results) if (result.status === 'fulfilled') clients.push(result.value);
    return clients.length;
  } finally {
    for (const client of clients) await client.close();
  }
}

/** The reload that applied the cluster's version `version` (whatever triggered it). */
const applied = (version: number) => (line: BrokerLogLine) =>
  line.msg === 'configuration reloaded' && line.clusterVersion === version;

describe.skipIf(!etcdAvailable())('serve --cluster: cluster-wide settings over the file', () => {
  beforeAll(async () => {
    etcd = await startEtcd();
    root = await makeTempDir('ms-serve-config-');
    const cluster = `${etcd.endpoint.replace('http://', 'etcd://')}/serve-config`;
    for (const id of [1, 2]) {
      const port = await freePort();
      const file = join(root, `broker-${id}.toml`);
      await writeFile(file, toml(2, '60s'));
      files.push(file);
      brokers.push(
        await startBroker({
          port,
          dataDir: join(root, `data-${id}`),
          configFile: file,
          logLevel: 'info',
          env: {
            MEMORYSTREAMER_CLUSTER_ETCD: cluster,
            MEMORYSTREAMER_CLUSTER_BROKER_ID: String(id),
            MEMORYSTREAMER_CLUSTER_ADVERTISE: `127.0.0.1:${port}`,
            MEMORYSTREAMER_CLUSTER_LEASE_TTL: '1s',
          },
        }),
      );
    }
  }, 90_000);
  afterAll(async () => {
    for (const broker of brokers) await broker.stop();
    await etcd?.stop();
    if (root !== undefined) await removeTempDir(root);
  });

  it('applies config set on every broker over its file; unset and rollback reach every broker', async () => {
    // Every other broker keeps a heartbeat connection to the controller, from 127.0.0.1 too: on the
    // controller those take places of the per-address limit.
    const controllerId = await until(async () => {
      const client = await connect({ brokers: `127.0.0.1:${brokers[0]!.port}` });
      try {
        const id = (await client.admin.metadata()).controllerId;
        return id > 0 ? id : null;
      } finally {
        await client.close();
      }
    });
    const held = (index: number) => (index + 1 === controllerId ? brokers.length - 1 : 0);
    // The file allows two connections per address.
    await until(async () => ((await connections(brokers[1]!.port, 4)) === 2 - held(1) ? true : null));

    const set = await cli(
      '--broker',
      `127.0.0.1:${brokers[0]!.port}`,
      'config',
      'set',
      'server.max_connections_per_address=5',
    );
    expect(set.code, set.err).toBe(0);
    for (const broker of brokers) {
      const line = await broker.waitForLog(applied(1));
      expect(line.fromCluster).toBe('server.max_connections_per_address');
    }
    await until(async () => ((await connections(brokers[1]!.port, 6)) === 5 - held(1) ? true : null));

    // The file changes both keys: the cluster's value stays, the file's other change applies.
    const before = brokers.map((broker) => broker.logs().length);
    await writeFile(files[1]!, toml(3, '90s'));
    brokers[1]!.child.kill('SIGHUP');
    const line = await brokers[1]!.waitForLog(
      (l) => l.msg === 'configuration reloaded' && /^(SIGHUP|file change)$/.test(String(l.trigger)),
      { after: before[1] },
    );
    expect(line.keys).toBe('server.idle_timeout');
    expect(await connections(brokers[1]!.port, 6)).toBe(5 - held(1));

    // Unset: every broker goes back to its own file's value (3 on this one now, 2 on the other).
    const unset = await cli(
      '--broker',
      `127.0.0.1:${brokers[0]!.port}`,
      'config',
      'unset',
      'server.max_connections_per_address',
    );
    expect(unset.code, unset.err).toBe(0);
    await brokers[1]!.waitForLog(applied(2));
    expect(await connections(brokers[1]!.port, 6)).toBe(3 - held(1));
    await brokers[0]!.waitForLog(applied(2));
    expect(await connections(brokers[0]!.port, 6)).toBe(2 - held(0));

    // Rollback to version 1: the cluster's 5 again, everywhere.
    const rollback = await cli(
      '--broker',
      `127.0.0.1:${brokers[1]!.port}`,
      'config',
      'rollback',
      '--to',
      '1',
    );
    expect(rollback.code, rollback.err).toBe(0);
    for (const broker of brokers) await broker.waitForLog(applied(3));
    expect(await connections(brokers[0]!.port, 6)).toBe(5 - held(0));

    const history = await cli('--json', '--broker', `127.0.0.1:${brokers[1]!.port}`, 'config', 'history');
    expect(
      (JSON.parse(history.out) as Array<{ version: number; note: string; changes: unknown[] }>).map((v) => [
        v.version,
        v.note,
        v.changes,
      ]),
    ).toEqual([
      [
        1,
        'set server.max_connections_per_address',
        [{ key: 'server.max_connections_per_address', from: null, to: 5 }],
      ],
      [
        2,
        'unset server.max_connections_per_address',
        [{ key: 'server.max_connections_per_address', from: 5, to: null }],
      ],
      [3, 'rollback to version 1', [{ key: 'server.max_connections_per_address', from: null, to: 5 }]],
    ]);
    const missing = await cli('--broker', `127.0.0.1:${brokers[1]!.port}`, 'config', 'rollback', '--to', '7');
    expect(missing.code).not.toBe(0);
    expect(missing.err).toMatch(/UNKNOWN_CONFIG_VERSION/);
  }, 90_000);
});
