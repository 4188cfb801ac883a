// `memorystreamer audit verify|tail` over logs on disk, and offline user changes
// (`memorystreamer user … --data-dir`) recorded in the data directory's audit log.

import { readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../../src/cli/main.js';
import { AuditLog } from '../../src/security/audit-log.js';
import { tempDir } from '../harness/temp-dir.js';

async function cli(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(argv, { env: {}, out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

async function dataDirWithLog(count: number): Promise<{ data: string; file: string }> {
  const data = await tempDir('ms-audit-cli-');
  const log = AuditLog.open({ dir: join(data, 'audit'), fsyncIntervalMs: 0 });
  for (let i = 1; i <= count; i++)
    log.append({
      principal: 'User:admin',
      source: '127.0.0.1:4000',
      action: 'topic.delete',
      resource: `topic:t${i}`,
      result: 'success',
    });
  log.close();
  return { data, file: join(data, 'audit', 'audit.log') };
}

describe('memorystreamer audit', () => {
  it('verify reports an intact chain (human and --json) and tail shows the latest records', async () => {
    const { data } = await dataDirWithLog(5);
    const human = await cli('audit', 'verify', '--data-dir', data);
    expect(human.code).toBe(0);
    expect(human.out).toMatch(/chain:\s+intact/);
    expect(human.out).toMatch(/records checked:\s+5/);
    const json = await cli('--json', 'audit', 'verify', '--data-dir', data);
    expect(JSON.parse(json.out)).toMatchObject({ intact: true, records: 5, lastSeq: 5, broken: null });

    const tail = await cli('audit', 'tail', '-n', '2', '--data-dir', data);
    expect(tail.code).toBe(0);
    expect(tail.out).toMatch(/topic:t4/);
    expect(tail.out).toMatch(/topic:t5/);
    expect(tail.out).not.toMatch(/topic:t3/);
    const tailJson = await cli('--json', 'audit', 'tail', '-n', '1', '--data-dir', data);
    expect(JSON.parse(tailJson.out)).toMatchObject([
      { seq: 5, resource: 'topic:t5', principal: 'User:admin' },
    ]);
  });

  it('verify exits 1 naming the file, line and both hashes when a byte was changed', async () => {
    const { data, file } = await dataDirWithLog(5);
    const text = readFileSync(file, 'utf8').replace('topic:t3', 'topic:t8');
    writeFileSync(file, text);
    const broken = await cli('audit', 'verify', '--file', file);
    expect(broken.code).toBe(1);
    expect(broken.err).toMatch(/AUDIT_CHAIN_BROKEN/);
    expect(broken.err).toMatch(
      /audit\.log line 4: the record was changed.*expected [0-9a-f]{64}, found [0-9a-f]{64}/,
    );
    const json = await cli('--json', 'audit', 'verify', '--data-dir', data);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.out)).toMatchObject({ error: { code: 825, name: 'AUDIT_CHAIN_BROKEN' } });
  });

  it('verify reports a torn last record as torn, not as tampering', async () => {
    const { data, file } = await dataDirWithLog(3);
    truncateSync(file, readFileSync(file).length - 10);
    const torn = await cli('audit', 'verify', '--data-dir', data);
    expect(torn.code).toBe(0);
    expect(torn.out).toMatch(
      /torn last record:\s+audit\.log line 4 \(\d+ bytes\): an interrupted write, not tampering/,
    );
  });

  it('records offline user changes, done and refused, in the audit log of the data directory', async () => {
    const data = await tempDir('ms-audit-user-');
    const password = join(data, 'pw');
    writeFileSync(password, 'secret-1\n');
    expect((await cli('user', 'add', 'carol', '--password-file', password, '--data-dir', data)).code).toBe(0);
    expect((await cli('user', 'add', 'carol', '--password-file', password, '--data-dir', data)).code).toBe(1);
    expect((await cli('user', 'remove', 'carol', '--data-dir', data)).code).toBe(0);
    const tail = JSON.parse((await cli('--json', 'audit', 'tail', '--data-dir', data)).out) as Array<
      Record<string, unknown>
    >;
    expect(tail.map((r) => [r.action, r.result, r.resource, r.principal])).toEqual([
      ['user.add', 'success', 'user:carol', null],
      ['user.add', 'failure', 'user:carol', null],
      ['user.remove', 'success', 'user:carol', null],
    ]);
    expect(tail[0]!.source).toMatch(/^cli:/);
    expect(tail[1]!.detail).toMatchObject({ offline: true, error: 'USER_ALREADY_EXISTS' });
    expect((await cli('audit', 'verify', '--data-dir', data)).code).toBe(0);
  });

  it('says clearly when there is no log', async () => {
    const data = await tempDir('ms-audit-none-');
    const none = await cli('audit', 'verify', '--data-dir', data);
    expect(none.code).toBe(1);
    expect(none.err).toMatch(/AUDIT_LOG_UNAVAILABLE.*no audit log in/);
  });
});
