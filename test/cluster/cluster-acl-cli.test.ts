// `memorystreamer acl … --cluster etcd://…` and `tenant … --cluster etcd://…` on a real etcd: the
// ACLs and tenants of a cluster are changed and listed straight in etcd with no broker running;
// `--cluster` alone is still the cluster resource (both: --cluster --cluster etcd://…); --data-dir
// with --cluster is refused. `serve` of a cluster with authz on and no super-user: refused while etcd
// holds no ACL (fail closed, naming the command that adds one), started once `acl add --cluster`
// put the administrator's entries there, serving them, and stopped cleanly (exit 0: the etcd
// connections of its ACL and tenant stores do not hold it).

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/cli/main.js';
import { connect } from '../../src/client/connect.js';
import { parseClusterUrl } from '../../src/cluster/control-plane/cluster-url.js';
import { clusterPrefix } from '../../src/cluster/control-plane/metadata-keys.js';
import { EtcdAclStore } from '../../src/security/etcd-acl-store.js';
import { makeCertificates, opensslAvailable } from '../broker/server/helpers/certs.js';
import { serveRefusal, startBroker } from '../harness/broker.js';
import { type EtcdProcess, etcdAvailable, freePort, startEtcd } from '../harness/etcd.js';
import { makeTempDir, removeTempDir } from '../harness/temp-dir.js';

let etcd: EtcdProcess;
let dir: string;

async function cli(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(argv, { env: {}, out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

function urlOf(name: string): string {
  return `etcd://${etcd.endpoint.replace('http://', '')}/${name}`;
}

describe.skipIf(!etcdAvailable())('memorystreamer acl and tenant --cluster', () => {
  beforeAll(async () => {
    etcd = await startEtcd();
    dir = await makeTempDir('ms-cluster-acl-cli-');
  }, 30_000);
  afterAll(async () => {
    await etcd?.stop();
    if (dir !== undefined) await removeTempDir(dir);
  });

  it('adds, lists and removes the ACLs of a cluster in etcd, no broker running', async () => {
    const url = urlOf('acls');
    const added = await cli(
      'acl',
      'add',
      '--principal',
      'User:alice',
      '--topic',
      'orders',
      '--operation',
      'read',
      'write',
      '--cluster',
      url,
    );
    expect(added.err).toBe('');
    expect(added.code).toBe(0);
    expect(added.out).toMatch(/added 2 of 2 ACL entries \(etcd .*\/memorystreamer\/acls\/acls\/\)/);
    // --cluster alone is the cluster resource; given twice, the resource and the target.
    const resource = await cli(
      'acl',
      'add',
      '--principal',
      'User:ops',
      '--cluster',
      '--operation',
      'alter',
      '--cluster',
      url,
    );
    expect(resource.err).toBe('');
    expect(resource.code).toBe(0);

    const address = parseClusterUrl(url);
    const store = await EtcdAclStore.open({ address, prefix: clusterPrefix(address.name), url });
    try {
      expect(store.list()).toHaveLength(3);
      expect(store.list()).toContainEqual({
        principal: 'User:ops',
        resourceType: 'cluster',
        resourceName: 'cluster',
        pattern: 'literal',
        operation: 'alter',
        permission: 'allow',
      });
    } finally {
      await store.close();
    }
    const listed = await cli('--json', 'acl', 'list', '--principal', 'User:alice', '--cluster', url);
    expect(listed.code).toBe(0);
    expect((JSON.parse(listed.out) as Array<{ operation: string }>).map((e) => e.operation).sort()).toEqual([
      'read',
      'write',
    ]);
    const removed = await cli(
      'acl',
      'remove',
      '--principal',
      'User:alice',
      '--topic',
      'orders',
      '--operation',
      'read',
      '--cluster',
      url,
    );
    expect(removed.code).toBe(0);
    expect(removed.out).toMatch(/removed 1 of 1/);
    const again = await cli(
      'acl',
      'remove',
      '--principal',
      'User:alice',
      '--topic',
      'orders',
      '--operation',
      'read',
      '--cluster',
      url,
    );
    expect(again.code).not.toBe(0);
    expect(again.err).toMatch(/ACL_NOT_FOUND/);

    const notUrl = await cli(
      'acl',
      'add',
      '--principal',
      'User:a',
      '--cluster',
      'orders',
      '--operation',
      'read',
    );
    expect(notUrl.code).not.toBe(0);
    expect(notUrl.err).toMatch(/alone, --cluster names the cluster resource/);
    const both = await cli('acl', 'list', '--cluster', url, '--data-dir', dir);
    expect(both.code).not.toBe(0);
    expect(both.err).toMatch(/--data-dir and --cluster: a broker alone keeps its ACLs/);
  });

  it('adds tenants, members and quotas of a cluster in etcd, no broker running', async () => {
    const url = urlOf('tenants');
    const added = await cli('tenant', 'add', 'acme', '--cluster', url);
    expect(added.err).toBe('');
    expect(added.out).toMatch(/added tenant acme \(etcd .*\/memorystreamer\/tenants\/tenant-registry\)/);
    expect((await cli('tenant', 'add-principal', 'acme', 'User:alice', '--cluster', url)).code).toBe(0);
    expect(
      (
        await cli(
          'tenant',
          'set-quota',
          'acme',
          '--produce-bytes-per-sec',
          '1MB',
          '--topics',
          '5',
          '--cluster',
          url,
        )
      ).code,
    ).toBe(0);
    const listed = await cli('--json', 'tenant', 'list', '--cluster', url);
    expect(JSON.parse(listed.out)).toEqual({
      tenants: [
        { tenant: 'acme', principals: ['User:alice'], quota: { produceBytesPerSec: 1_000_000, topics: 5 } },
      ],
      principals: [],
    });
    const taken = await cli('tenant', 'add', 'acme', '--cluster', url);
    expect(taken.code).not.toBe(0);
    expect(taken.err).toMatch(/TENANT_ALREADY_EXISTS/);
    const both = await cli('tenant', 'list', '--cluster', url, '--data-dir', dir);
    expect(both.code).not.toBe(0);
    expect(both.err).toMatch(/--data-dir and --cluster/);
  });

  it.skipIf(!opensslAvailable())(
    'serve in a cluster with authz and no super-user: refused while etcd holds no ACL, then started by ACLs added with --cluster',
    async () => {
      const url = urlOf('closed');
      const certs = await makeCertificates(await makeTempDir('ms-cluster-acl-serve-certs-'));
      const port = await freePort();
      const env = {
        MEMORYSTREAMER_CLUSTER_ETCD: url,
        MEMORYSTREAMER_CLUSTER_BROKER_ID: '1',
        MEMORYSTREAMER_CLUSTER_ADVERTISE: `127.0.0.1:${port}`,
        MEMORYSTREAMER_AUTH_MECHANISMS: 'SCRAM-SHA-256,mtls',
        MEMORYSTREAMER_CLUSTER_BROKER_PRINCIPALS: 'User:broker',
        MEMORYSTREAMER_AUTHZ_ENABLED: 'true',
        MEMORYSTREAMER_TLS_CERT_FILE: join(certs.dir, 'broker.pem'),
        MEMORYSTREAMER_TLS_KEY_FILE: join(certs.dir, 'broker.key'),
        MEMORYSTREAMER_TLS_CA_FILE: join(certs.dir, 'ca.pem'),
        MEMORYSTREAMER_TLS_CLIENT_AUTH: 'request',
      };
      try {
        const password = join(dir, 'closed-pw');
        await writeFile(password, 'admin-secret\n');
        expect((await cli('user', 'add', 'admin', '--password-file', password, '--cluster', url)).code).toBe(
          0,
        );
        const refused = await serveRefusal({ dataDir: join(dir, 'closed-0'), port, env });
        expect(refused.code).not.toBe(0);
        expect(refused.stderr).toMatch(/no super-user.*holds no ACL.*acl add .*--cluster etcd:\/\//s);

        // The administrator's rights, only in etcd: everything on the cluster and on every topic.
        for (const resource of [['--cluster'], ['--topic', '*']])
          expect(
            (
              await cli(
                'acl',
                'add',
                '--principal',
                'User:admin',
                ...resource,
                '--operation',
                'all',
                '--cluster',
                url,
              )
            ).code,
          ).toBe(0);
        const broker = await startBroker({ dataDir: join(dir, 'closed-1'), port, env });
        const client = await connect({
          brokers: `memorystreamer+tls://127.0.0.1:${port}`,
          tls: { ca: certs.ca },
          sasl: { mechanism: 'SCRAM-SHA-256', username: 'admin', password: 'admin-secret' },
        });
        try {
          await client.admin.createTopic({ name: 'audited', partitions: 1, replicationFactor: 1 });
          expect((await client.admin.listTopics()).map((t) => t.name)).toContain('audited');
          // The entries in force are the cluster's: what etcd holds.
          expect(await client.admin.listAcls()).toHaveLength(2);
        } finally {
          await client.close();
        }
        expect(await broker.stop()).toBe(0);
      } finally {
        await removeTempDir(certs.dir);
      }
    },
    60_000,
  );
});
