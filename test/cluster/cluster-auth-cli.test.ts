// `memorystreamer user … --cluster etcd://…` on a real etcd: the first user of a cluster is added
// before any broker starts, listed, given a new password and removed, straight in etcd; the CLI
// process exits once done (its etcd connection closed); --data-dir with --cluster is refused.
// `serve` of a cluster with authentication on: refused while etcd holds no user (naming the
// command that adds one) and without broker principals; started once both are there, serving the
// user from etcd, and stopped cleanly by SIGTERM (exit 0: its etcd connection does not hold it).

import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/cli/main.js';
import { connect } from '../../src/client/connect.js';
import { parseClusterUrl } from '../../src/cluster/control-plane/cluster-url.js';
import { clusterPrefix } from '../../src/cluster/control-plane/metadata-keys.js';
import { EtcdUserStore } from '../../src/security/etcd-user-store.js';
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

async function storeOf(url: string): Promise<EtcdUserStore> {
  const address = parseClusterUrl(url);
  return EtcdUserStore.open({ address, prefix: clusterPrefix(address.name), url });
}

describe.skipIf(!etcdAvailable())('memorystreamer user --cluster', () => {
  beforeAll(async () => {
    etcd = await startEtcd();
    dir = await makeTempDir('ms-cluster-auth-cli-');
  }, 30_000);
  afterAll(async () => {
    await etcd?.stop();
    if (dir !== undefined) await removeTempDir(dir);
  });

  it('adds, lists, changes and removes the users of a cluster in etcd, no broker running', async () => {
    const url = `etcd://${etcd.endpoint.replace('http://', '')}/prod`;
    const password = join(dir, 'pw');
    await writeFile(password, 'first-secret\n');
    const added = await cli('user', 'add', 'admin', '--password-file', password, '--cluster', url);
    expect(added.err).toBe('');
    expect(added.code).toBe(0);
    expect(added.out).toMatch(/added user admin \(etcd .*\/memorystreamer\/prod\/users\/\)/);

    const store = await storeOf(url);
    try {
      expect(store.has('admin')).toBe(true);
      const first = store.credential('admin', 'SCRAM-SHA-512')!.storedKey;
      await writeFile(password, 'second-secret\n');
      expect((await cli('user', 'passwd', 'admin', '--password-file', password, '--cluster', url)).code).toBe(
        0,
      );
      const reread = await storeOf(url);
      expect(reread.credential('admin', 'SCRAM-SHA-512')!.storedKey.equals(first)).toBe(false);
      await reread.close();

      const listed = await cli('--json', 'user', 'list', '--cluster', url);
      expect(JSON.parse(listed.out)).toEqual([
        {
          name: 'admin',
          mechanisms: [
            { mechanism: 'SCRAM-SHA-256', iterations: 4096 },
            { mechanism: 'SCRAM-SHA-512', iterations: 4096 },
          ],
        },
      ]);
      const taken = await cli('user', 'add', 'admin', '--password-file', password, '--cluster', url);
      expect(taken.code).not.toBe(0);
      expect(taken.err).toMatch(/USER_ALREADY_EXISTS|exists already/);
      expect((await cli('user', 'remove', 'admin', '--cluster', url)).code).toBe(0);
      const after = await storeOf(url);
      expect(after.size).toBe(0);
      await after.close();
    } finally {
      await store.close();
    }
  });

  it('exits once done (the etcd connection is closed), with the password on standard input', async () => {
    const url = `etcd://${etcd.endpoint.replace('http://', '')}/process`;
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
    const child = spawn(
      process.execPath,
      ['--import', tsx, main, 'user', 'add', 'first', '--password-stdin', '--cluster', url],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let err = '';
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.stdin.end('pw-first\n');
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    expect(err).toBe('');
    expect(code).toBe(0);
    const store = await storeOf(url);
    expect(store.has('first')).toBe(true);
    await store.close();
  }, 30_000);

  it('refuses --data-dir together with --cluster', async () => {
    const url = `etcd://${etcd.endpoint.replace('http://', '')}/prod`;
    const result = await cli('user', 'list', '--cluster', url, '--data-dir', dir);
    expect(result.code).not.toBe(0);
    expect(result.err).toMatch(/--data-dir and --cluster/);
  });

  it.skipIf(!opensslAvailable())(
    'serve in a cluster with authentication: refused without a user or broker principals, then started',
    async () => {
      const url = `etcd://${etcd.endpoint.replace('http://', '')}/served`;
      const certs = await makeCertificates(await makeTempDir('ms-cluster-auth-serve-certs-'));
      const port = await freePort();
      const env = {
        MEMORYSTREAMER_CLUSTER_ETCD: url,
        MEMORYSTREAMER_CLUSTER_BROKER_ID: '1',
        MEMORYSTREAMER_CLUSTER_ADVERTISE: `127.0.0.1:${port}`,
        MEMORYSTREAMER_AUTH_MECHANISMS: 'SCRAM-SHA-256,mtls',
        MEMORYSTREAMER_AUTHZ_SUPER_USERS: 'User:admin',
        MEMORYSTREAMER_CLUSTER_BROKER_PRINCIPALS: 'User:broker',
        MEMORYSTREAMER_TLS_CERT_FILE: join(certs.dir, 'broker.pem'),
        MEMORYSTREAMER_TLS_KEY_FILE: join(certs.dir, 'broker.key'),
        MEMORYSTREAMER_TLS_CA_FILE: join(certs.dir, 'ca.pem'),
        MEMORYSTREAMER_TLS_CLIENT_AUTH: 'request',
      };
      try {
        const noUser = await serveRefusal({ dataDir: join(dir, 'served-0'), port, env });
        expect(noUser.code).not.toBe(0);
        expect(noUser.stderr).toMatch(/holds no user.*user add NAME --password-stdin --cluster etcd:\/\//s);
        const noPrincipals = await serveRefusal({
          dataDir: join(dir, 'served-1'),
          port,
          env: { ...env, MEMORYSTREAMER_CLUSTER_BROKER_PRINCIPALS: undefined },
        });
        expect(noPrincipals.code).not.toBe(0);
        expect(noPrincipals.stderr).toMatch(/cluster.broker_principals/);

        const password = join(dir, 'served-pw');
        await writeFile(password, 'admin-secret\n');
        expect((await cli('user', 'add', 'admin', '--password-file', password, '--cluster', url)).code).toBe(
          0,
        );
        const broker = await startBroker({ dataDir: join(dir, 'served-2'), port, env });
        const client = await connect({
          brokers: `memorystreamer+tls://127.0.0.1:${port}`,
          tls: { ca: certs.ca },
          sasl: { mechanism: 'SCRAM-SHA-256', username: 'admin', password: 'admin-secret' },
        });
        try {
          expect(Array.isArray(await client.admin.listTopics())).toBe(true);
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
