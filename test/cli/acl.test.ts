// `memorystreamer acl` offline (acls.json of a data directory) and over the wire (a running
// `serve` with SCRAM and authz.enabled): human output and --json, refusals with their codes, and
// `serve` refusing authorization with neither a super-user nor an ACL.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../../src/cli/main.js';
import { deriveCredential } from '../../src/security/credentials.js';
import { UserStore } from '../../src/security/user-store.js';
import { serveRefusal, startBroker } from '../harness/broker.js';
import { tempDir } from '../harness/temp-dir.js';

async function cli(env: NodeJS.ProcessEnv, ...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(argv, { env, out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

async function addUser(dataDir: string, name: string): Promise<void> {
  const store = await UserStore.open(dataDir);
  await store.change({
    kind: 'add',
    name,
    credentials: { 'SCRAM-SHA-256': deriveCredential('SCRAM-SHA-256', `${name}-pw`) },
  });
}

describe('memorystreamer acl', () => {
  it('adds, lists and removes entries offline, with human and JSON output', async () => {
    const data = join(await tempDir('ms-acl-cli-'), 'data');
    const added = await cli(
      {},
      'acl',
      'add',
      '--principal',
      'User:alice',
      '--topic',
      'orders',
      '--prefix',
      '--operation',
      'write',
      'read',
      '--data-dir',
      data,
    );
    expect(added.err).toBe('');
    expect(added.code).toBe(0);
    expect(added.out).toMatch(/added 2 of 2 ACL entries/);
    expect(added.out).toMatch(/User:alice\s+allow\s+write\s+topic:orders\s+prefix/);
    const denied = await cli(
      {},
      'acl',
      'add',
      '--principal',
      '*',
      '--cluster',
      '--operation',
      'alter',
      '--deny',
      '--data-dir',
      data,
    );
    expect(denied.code).toBe(0);

    const listed = await cli({}, '--json', 'acl', 'list', '--data-dir', data);
    expect(JSON.parse(listed.out)).toEqual([
      {
        principal: 'User:alice',
        resourceType: 'topic',
        resourceName: 'orders',
        pattern: 'prefix',
        operation: 'write',
        permission: 'allow',
      },
      {
        principal: 'User:alice',
        resourceType: 'topic',
        resourceName: 'orders',
        pattern: 'prefix',
        operation: 'read',
        permission: 'allow',
      },
      {
        principal: '*',
        resourceType: 'cluster',
        resourceName: 'cluster',
        pattern: 'literal',
        operation: 'alter',
        permission: 'deny',
      },
    ]);
    expect(JSON.parse(await readFile(join(data, 'acls.json'), 'utf8')).acls).toHaveLength(3);

    const removed = await cli(
      {},
      'acl',
      'remove',
      '--principal',
      'User:alice',
      '--topic',
      'orders',
      '--prefix',
      '--operation',
      'read',
      '--data-dir',
      data,
    );
    expect(removed.out).toMatch(/removed 1 of 1 ACL entry/);
    const again = await cli(
      {},
      'acl',
      'remove',
      '--principal',
      'User:alice',
      '--topic',
      'orders',
      '--prefix',
      '--operation',
      'read',
      '--data-dir',
      data,
    );
    expect(again.code).not.toBe(0);
    expect(again.err).toMatch(/ACL_NOT_FOUND/);
    expect((await cli({}, 'acl', 'list', '--principal', 'User:alice', '--data-dir', data)).out).toMatch(
      /write/,
    );
  });

  it('refuses an entry without a resource, with two, or with an unknown operation', async () => {
    const data = join(await tempDir('ms-acl-cli-bad-'), 'data');
    const none = await cli(
      {},
      'acl',
      'add',
      '--principal',
      'User:a',
      '--operation',
      'read',
      '--data-dir',
      data,
    );
    expect(none.code).not.toBe(0);
    expect(none.err).toMatch(/exactly one resource/);
    const two = await cli(
      {},
      'acl',
      'add',
      '--principal',
      'User:a',
      '--topic',
      't',
      '--group',
      'g',
      '--operation',
      'read',
      '--data-dir',
      data,
    );
    expect(two.err).toMatch(/exactly one resource/);
    const op = await cli(
      {},
      'acl',
      'add',
      '--principal',
      'User:a',
      '--topic',
      't',
      '--operation',
      'fly',
      '--data-dir',
      data,
    );
    expect(op.err).toMatch(/--operation "fly"/);
    const principal = await cli(
      {},
      'acl',
      'add',
      '--principal',
      'alice',
      '--topic',
      't',
      '--operation',
      'read',
      '--data-dir',
      data,
    );
    expect(principal.err).toMatch(/INVALID_ACL/);
  });

  it('changes ACLs over the wire as a super-user; others are refused until allowed', async () => {
    const data = join(await tempDir('ms-acl-cli-wire-'), 'data');
    await addUser(data, 'admin');
    await addUser(data, 'alice');
    const broker = await startBroker({
      dataDir: data,
      env: {
        MEMORYSTREAMER_AUTH_MECHANISMS: 'SCRAM-SHA-256',
        MEMORYSTREAMER_AUTHZ_ENABLED: 'true',
        MEMORYSTREAMER_AUTHZ_SUPER_USERS: 'User:admin',
      },
    });
    const address = `127.0.0.1:${broker.port}`;
    const asAdmin = { MEMORYSTREAMER_CLI_USER: 'admin', MEMORYSTREAMER_PASSWORD: 'admin-pw' };
    const asAlice = { MEMORYSTREAMER_CLI_USER: 'alice', MEMORYSTREAMER_PASSWORD: 'alice-pw' };

    const refused = await cli(asAlice, '--broker', address, 'acl', 'list');
    expect(refused.code).not.toBe(0);
    expect(refused.err).toMatch(/AUTHORIZATION_FAILED.*User:alice may not describe cluster/);

    const added = await cli(
      asAdmin,
      '--json',
      '--broker',
      address,
      'acl',
      'add',
      '--principal',
      'User:alice',
      '--cluster',
      '--operation',
      'describe',
    );
    expect(added.err).toBe('');
    expect(JSON.parse(added.out)).toMatchObject({ action: 'add', changed: 1 });

    const listed = await cli(asAlice, '--json', '--broker', address, 'acl', 'list');
    expect(listed.err).toBe('');
    expect(JSON.parse(listed.out)).toEqual([
      {
        principal: 'User:alice',
        resourceType: 'cluster',
        resourceName: 'cluster',
        pattern: 'literal',
        operation: 'describe',
        permission: 'allow',
      },
    ]);
    // Describe does not allow alter.
    const change = await cli(
      asAlice,
      '--broker',
      address,
      'acl',
      'add',
      '--principal',
      'User:alice',
      '--topic',
      't',
      '--operation',
      'read',
    );
    expect(change.err).toMatch(/may not alter cluster/);
    await broker.stop();
  });

  it('serve refuses authz.enabled with neither a super-user nor an ACL', async () => {
    const data = join(await tempDir('ms-acl-cli-closed-'), 'data');
    const refusal = await serveRefusal({ dataDir: data, env: { MEMORYSTREAMER_AUTHZ_ENABLED: 'true' } });
    expect(refusal.code).not.toBe(0);
    expect(refusal.stderr).toMatch(/authz.enabled = true but there is no super-user/);
  });
});
