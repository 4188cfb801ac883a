// `memorystreamer user … --cluster etcd://…` on a real etcd: the first user of a cluster is added
// before any broker starts, listed, given a new password and removed, straight in etcd; the CLI
// process exits once done (its etcd connection closed); --data-dir with --cluster is refused.

import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/cli/main.js';
import { parseClusterUrl } from '../../src/cluster/control-plane/cluster-url.js';
import { clusterPrefix } from '../../src/cluster/control-plane/metadata-keys.js';
import { EtcdUserStore } from '../../src/security/etcd-user-store.js';
import { type EtcdProcess, etcdAvailable, startEtcd } from '../harness/etcd.js';
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
});
