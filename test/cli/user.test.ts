// `memorystreamer user` offline (the users file of a data directory) and over the wire (as a
// super-user of a running `serve` with authentication on); `serve` refusing authentication
// without users, or with a cluster; the CLI's --user / MEMORYSTREAMER_PASSWORD / --password-stdin.

import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/broker/config/load-config.js';
import { authFrom } from '../../src/cli/broker-options.js';
import { run } from '../../src/cli/main.js';
import { UserStore } from '../../src/security/user-store.js';
import { serveRefusal, startBroker } from '../harness/broker.js';
import { tempDir } from '../harness/temp-dir.js';

async function cli(env: NodeJS.ProcessEnv, ...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(argv, { env, out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

async function passwordFile(dir: string, name: string, password: string): Promise<string> {
  const path = join(dir, `${name}.password`);
  await writeFile(path, `${password}\n`);
  return path;
}

/** The CLI as a process, with `input` on its standard input. */
function cliProcess(argv: string[], input: string, env: NodeJS.ProcessEnv = {}) {
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', tsx, main, ...argv], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  child.stdin.end(input);
  return new Promise<{ code: number | null; out: string; err: string }>((resolve) =>
    child.once('close', (code) => resolve({ code, out, err })),
  );
}

describe('memorystreamer user', () => {
  it('adds, lists, changes and removes users offline; the file holds no password', async () => {
    const dir = await tempDir('ms-user-offline-');
    const data = join(dir, 'data');
    const added = await cli(
      {},
      'user',
      'add',
      'alice',
      '--password-file',
      await passwordFile(dir, 'a', 'pw-1'),
      '--data-dir',
      data,
    );
    expect(added.err).toBe('');
    expect(added.code).toBe(0);
    const again = await cli(
      {},
      'user',
      'add',
      'alice',
      '--password-file',
      await passwordFile(dir, 'a', 'pw-1'),
      '--data-dir',
      data,
    );
    expect(again.err).toMatch(/USER_ALREADY_EXISTS/);
    const listed = await cli({}, '--json', 'user', 'list', '--data-dir', data);
    expect(JSON.parse(listed.out)).toEqual([
      {
        name: 'alice',
        mechanisms: [
          { mechanism: 'SCRAM-SHA-256', iterations: 4096 },
          { mechanism: 'SCRAM-SHA-512', iterations: 4096 },
        ],
      },
    ]);
    const store = await UserStore.open(data);
    const before = store.credential('alice', 'SCRAM-SHA-256')!;
    expect(
      (
        await cli(
          {},
          'user',
          'passwd',
          'alice',
          '--password-file',
          await passwordFile(dir, 'a', 'pw-2'),
          '--data-dir',
          data,
          '--iterations',
          '8192',
        )
      ).code,
    ).toBe(0);
    await store.refresh();
    const after = store.credential('alice', 'SCRAM-SHA-256')!;
    expect(after.iterations).toBe(8192);
    expect(after.salt.equals(before.salt)).toBe(false);
    const { readFile } = await import('node:fs/promises');
    expect(await readFile(store.path, 'utf8')).not.toContain('pw-2');
    expect(
      (
        await cli(
          {},
          'user',
          'passwd',
          'nobody',
          '--password-file',
          await passwordFile(dir, 'n', 'x'),
          '--data-dir',
          data,
        )
      ).err,
    ).toMatch(/USER_NOT_FOUND/);
    expect((await cli({}, 'user', 'remove', 'alice', '--data-dir', data)).code).toBe(0);
    expect((await cli({}, 'user', 'list', '--data-dir', data)).out).toBe('no users');
    expect(
      (
        await cli(
          {},
          'user',
          'add',
          'bad name',
          '--password-file',
          await passwordFile(dir, 'b', 'x'),
          '--data-dir',
          data,
        )
      ).err,
    ).toMatch(/INVALID_CREDENTIAL/);
  });

  it('reads the new password from standard input', async () => {
    const dir = await tempDir('ms-user-stdin-');
    const result = await cliProcess(
      ['user', 'add', 'carol', '--password-stdin', '--data-dir', dir],
      'from-stdin\n',
    );
    expect(result.err).toBe('');
    expect(result.code).toBe(0);
    expect((await UserStore.open(dir)).has('carol')).toBe(true);
  });

  it('serve refuses authentication with no user (fail closed)', async () => {
    const dir = await tempDir('ms-user-refuse-');
    const empty = await serveRefusal({
      dataDir: join(dir, 'data'),
      env: { MEMORYSTREAMER_AUTH_MECHANISMS: 'SCRAM-SHA-256' },
    });
    expect(empty.code).not.toBe(0);
    expect(empty.stderr).toMatch(/INVALID_CONFIG.*holds no user.*memorystreamer user add/s);
  });

  it('the configuration refuses authentication in a cluster without broker credentials, and unknown mechanisms or principals', async () => {
    const cluster = await loadConfig({
      env: {
        MEMORYSTREAMER_AUTH_MECHANISMS: 'SCRAM-SHA-256',
        MEMORYSTREAMER_CLUSTER_ETCD: 'etcd://127.0.0.1:1',
        MEMORYSTREAMER_CLUSTER_BROKER_ID: '1',
        MEMORYSTREAMER_CLUSTER_ADVERTISE: '127.0.0.1:1',
      },
    });
    expect(() => authFrom(cluster)).toThrow(
      /needs "mtls" among the mechanisms and cluster.broker_principals/,
    );
    await expect(loadConfig({ env: { MEMORYSTREAMER_AUTH_MECHANISMS: 'PLAIN' } })).rejects.toThrow(
      /auth.mechanisms.*SCRAM-SHA-256, SCRAM-SHA-512/,
    );
    await expect(loadConfig({ env: { MEMORYSTREAMER_AUTHZ_SUPER_USERS: 'admin' } })).rejects.toThrow(
      /User:<name>/,
    );
    const off = await loadConfig({ env: {} });
    expect(authFrom(off)).toBeNull();
    const on = await loadConfig({
      env: {
        MEMORYSTREAMER_AUTH_MECHANISMS: 'SCRAM-SHA-512, SCRAM-SHA-256',
        MEMORYSTREAMER_AUTHZ_SUPER_USERS: 'User:admin',
      },
    });
    expect(authFrom(on)).toMatchObject({
      mechanisms: ['SCRAM-SHA-512', 'SCRAM-SHA-256'],
      superUsers: ['User:admin'],
    });
  });

  it('manages users over the wire as a super-user; other clients must authenticate', async () => {
    const dir = await tempDir('ms-user-wire-');
    const data = join(dir, 'data');
    await cli(
      {},
      'user',
      'add',
      'admin',
      '--password-file',
      await passwordFile(dir, 'admin', 'admin-pw'),
      '--data-dir',
      data,
    );
    const broker = await startBroker({
      dataDir: data,
      env: {
        MEMORYSTREAMER_AUTH_MECHANISMS: 'SCRAM-SHA-256,SCRAM-SHA-512',
        MEMORYSTREAMER_AUTHZ_SUPER_USERS: 'User:admin',
      },
    });
    const address = `127.0.0.1:${broker.port}`;
    const asAdmin = { MEMORYSTREAMER_CLI_USER: 'admin', MEMORYSTREAMER_PASSWORD: 'admin-pw' };
    const added = await cli(
      asAdmin,
      '--broker',
      address,
      'user',
      'add',
      'bob',
      '--password-file',
      await passwordFile(dir, 'bob', 'bob-pw'),
    );
    expect(added.err).toBe('');
    const listed = await cli(asAdmin, '--json', '--broker', address, 'user', 'list');
    expect(JSON.parse(listed.out).map((u: { name: string }) => u.name)).toEqual(['admin', 'bob']);
    // Bob may use the broker, not manage users.
    const asBob = { MEMORYSTREAMER_PASSWORD: 'bob-pw' };
    expect(
      (
        await cli(
          asBob,
          '--broker',
          address,
          '--user',
          'bob',
          '--sasl-mechanism',
          'SCRAM-SHA-512',
          'topic',
          'create',
          'orders',
        )
      ).code,
    ).toBe(0);
    expect((await cli(asBob, '--broker', address, '--user', 'bob', 'user', 'list')).err).toMatch(
      /AUTHORIZATION_FAILED.*User:bob is not one/,
    );
    // Without credentials, or with a wrong password: refused with the code, never served.
    expect((await cli({}, '--broker', address, 'topic', 'list')).err).toMatch(
      /AUTHENTICATION_FAILED.*requires authentication \(SCRAM-SHA-256, SCRAM-SHA-512\)/,
    );
    expect(
      (await cli({ MEMORYSTREAMER_PASSWORD: 'nope' }, '--broker', address, '--user', 'bob', 'topic', 'list'))
        .err,
    ).toMatch(/AUTHENTICATION_FAILED.*wrong user name or password/);
    expect((await cli({}, '--broker', address, '--user', 'bob', 'topic', 'list')).err).toMatch(
      /INVALID_CONFIG.*MEMORYSTREAMER_PASSWORD/,
    );
    // The admin's password from standard input.
    const fromStdin = await cliProcess(
      ['--broker', address, '--user', 'admin', '--password-stdin', '--json', 'topic', 'list'],
      'admin-pw\n',
    );
    expect(fromStdin.err).toBe('');
    expect(fromStdin.out).toContain('orders');
    expect((await cli(asAdmin, '--broker', address, 'user', 'remove', 'bob')).code).toBe(0);
    expect((await cli(asBob, '--broker', address, '--user', 'bob', 'topic', 'list')).err).toMatch(
      /AUTHENTICATION_FAILED/,
    );
    expect(broker.logs().some((l) => l.msg === 'authentication failed' && l.user === 'bob')).toBe(true);
    expect(await broker.stop()).toBe(0);
  });
});
