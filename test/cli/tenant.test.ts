// `memorystreamer tenant` offline (the tenants file of a data directory) and over the wire (as a
// super-user of a running broker with authentication on), and a change over the wire applying to
// the broker's namespaces at once.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../../src/cli/main.js';
import { TcpTransport } from '../../src/client/tcp-transport.js';
import { deriveCredential } from '../../src/security/credentials.js';
import { UserStore } from '../../src/security/user-store.js';
import { startEmbeddedBroker } from '../harness/embedded.js';
import { tempDir } from '../harness/temp-dir.js';

async function cli(env: NodeJS.ProcessEnv, ...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(argv, { env, out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('memorystreamer tenant', () => {
  it('adds tenants, principals and quotas offline, and lists them', async () => {
    const data = join(await tempDir('ms-tenant-cli-'), 'data');
    for (const argv of [
      ['tenant', 'add', 'acme'],
      ['tenant', 'add', 'bravo'],
      ['tenant', 'add-principal', 'acme', 'User:alice'],
      [
        'tenant',
        'set-quota',
        'acme',
        '--produce-bytes-per-sec',
        '1MB',
        '--storage-bytes',
        '2GiB',
        '--topics',
        '3',
      ],
      ['tenant', 'set-quota', 'User:alice', '--connections', '2'],
    ]) {
      const result = await cli({}, ...argv, '--data-dir', data);
      expect(result.err).toBe('');
      expect(result.code).toBe(0);
    }
    const listed = await cli({}, '--json', 'tenant', 'list', '--data-dir', data);
    expect(JSON.parse(listed.out)).toEqual({
      tenants: [
        {
          tenant: 'acme',
          principals: ['User:alice'],
          quota: { produceBytesPerSec: 1_000_000, storageBytes: 2 * 1024 ** 3, topics: 3 },
        },
        { tenant: 'bravo', principals: [], quota: {} },
      ],
      principals: [{ principal: 'User:alice', quota: { connections: 2 } }],
    });
    const human = await cli({}, 'tenant', 'list', '--data-dir', data);
    expect(human.out).toMatch(/acme\s+User:alice\s+produceBytesPerSec=1000000/);
    // "none" removes a quota.
    await cli({}, 'tenant', 'set-quota', 'acme', '--topics', 'none', '--data-dir', data);
    const file = JSON.parse(await readFile(join(data, 'tenants.json'), 'utf8'));
    expect(file.tenants.acme.quota).toEqual({ produceBytesPerSec: 1_000_000, storageBytes: 2 * 1024 ** 3 });
    // A principal belongs to at most one tenant; bad names and sizes are refused with a reason.
    expect((await cli({}, 'tenant', 'add-principal', 'bravo', 'User:alice', '--data-dir', data)).err).toMatch(
      /INVALID_TENANT.*User:alice is in tenant acme/,
    );
    expect((await cli({}, 'tenant', 'add', 'Has.Dot', '--data-dir', data)).err).toMatch(/INVALID_TENANT/);
    expect(
      (await cli({}, 'tenant', 'set-quota', 'acme', '--produce-bytes-per-sec', 'fast', '--data-dir', data))
        .err,
    ).toMatch(/--produce-bytes-per-sec "fast": a size such as 1MB/);
    expect((await cli({}, 'tenant', 'remove', 'nobody', '--data-dir', data)).err).toMatch(/TENANT_NOT_FOUND/);
  });

  it('manages tenants over the wire as a super-user, applied to the namespaces at once', async () => {
    const data = await tempDir('ms-tenant-wire-');
    const users = await UserStore.open(data);
    for (const name of ['admin', 'bob'])
      await users.change({
        kind: 'add',
        name,
        credentials: { 'SCRAM-SHA-256': deriveCredential('SCRAM-SHA-256', `${name}-pw`, 4096) },
      });
    const broker = await startEmbeddedBroker({
      dataDir: data,
      port: 0,
      stopDeadlineMs: 200,
      auth: { mechanisms: ['SCRAM-SHA-256'], superUsers: ['User:admin'] },
    });
    const address = `127.0.0.1:${broker.address!.port}`;
    const asAdmin = { MEMORYSTREAMER_CLI_USER: 'admin', MEMORYSTREAMER_PASSWORD: 'admin-pw' };
    for (const argv of [
      ['tenant', 'add', 'bravo'],
      ['tenant', 'add-principal', 'bravo', 'User:bob'],
      ['tenant', 'set-quota', 'bravo', '--partitions', '8'],
    ]) {
      const result = await cli(asAdmin, '--broker', address, ...argv);
      expect(result.err).toBe('');
    }
    const listed = await cli(asAdmin, '--json', '--broker', address, 'tenant', 'list');
    expect(JSON.parse(listed.out).tenants).toEqual([
      { tenant: 'bravo', principals: ['User:bob'], quota: { partitions: 8 } },
    ]);
    // The broker wrote the file: offline tools see the same registry.
    expect(JSON.parse(await readFile(join(data, 'tenants.json'), 'utf8')).tenants.bravo.principals).toEqual([
      'User:bob',
    ]);
    // Bob is in bravo from now on: his topic lands in bravo's namespace.
    const bob = new TcpTransport({
      brokers: [{ host: '127.0.0.1', port: broker.address!.port }],
      sasl: { mechanism: 'SCRAM-SHA-256', username: 'bob', password: 'bob-pw' },
    });
    try {
      await bob.request('createTopic', { name: 'events', partitions: 1 }, { timeoutMs: 10_000 });
    } finally {
      await bob.close();
    }
    const topics = await cli(asAdmin, '--json', '--broker', address, 'topic', 'list');
    expect(JSON.parse(topics.out).map((t: { name: string }) => t.name)).toEqual(['bravo.events']);
    // Managing tenants is for super-users only.
    const asBob = { MEMORYSTREAMER_CLI_USER: 'bob', MEMORYSTREAMER_PASSWORD: 'bob-pw' };
    expect((await cli(asBob, '--broker', address, 'tenant', 'list')).err).toMatch(
      /AUTHORIZATION_FAILED.*User:bob is not one/,
    );
  });
});
