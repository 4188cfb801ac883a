// `memorystreamer serve --cores 2` refusing to run, in this process (the supervisor's refusals need
// no process of their own): a broker id, which the supervisor gives each member; a member that
// cannot listen, which stops everything already started (etcd, the other member) and fails with a
// non-zero exit. The running supervisor as a real process: serve-cores.test.ts.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/cli/main.js';
import { etcdAvailable } from '../harness/etcd.js';
import { useTempDir } from '../harness/temp-dir.js';

/** A process that is gone (or a zombie no one has reaped yet, which runs nothing). */
function gone(pid: number): boolean {
  const stat = `/proc/${pid}/stat`;
  if (!existsSync(stat)) return true;
  try {
    return readFileSync(stat, 'utf8').split(') ')[1]?.startsWith('Z') ?? true;
  } catch {
    return true;
  }
}

describe.skipIf(!etcdAvailable())('serve --cores refusals', () => {
  const dir = useTempDir('ms-cores-refused-', 'all');
  let taken: Server;
  beforeAll(async () => {
    // Only its port matters; a connection to it (a readiness probe) is dropped, so that close()
    // in afterAll does not wait for it.
    taken = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  });
  afterAll(() => new Promise<void>((resolve) => taken.close(() => resolve())));

  /** The CLI in this process (the supervisor's refusals need no process of their own). */
  async function cli(...argv: string[]) {
    const out: string[] = [];
    const code = await run(argv, {
      env: { MEMORYSTREAMER_LOG_LEVEL: 'error' },
      out: (text) => out.push(text),
      err: (text) => out.push(text),
    });
    return { code, out: out.join('\n') };
  }

  it('refuses a broker id, which each member gets from the supervisor', async () => {
    const refused = await cli('serve', '--cores', '2', '--broker-id', '3', '--data-dir', join(dir.path, 'a'));
    expect(refused.code).not.toBe(0);
    expect(refused.out).toMatch(/CORES_OPTION_CONFLICT.*--broker-id/);
    expect(existsSync(join(dir.path, 'a'))).toBe(false);
  });

  it('exits non-zero, with nothing left running, when a member cannot listen', async () => {
    const port = (taken.address() as { port: number }).port;
    const data = join(dir.path, 'b');
    // Member 1 would listen on the taken port (member 2 on the next one).
    const failed = await cli(
      'serve',
      '--cores',
      '2',
      '--port',
      String(port),
      '--admin-port',
      '0',
      '--data-dir',
      data,
    );
    expect(failed.code).not.toBe(0);
    expect(failed.out).toMatch(/CORES_MEMBER_FAILED.*broker 1.*already in use/s);
    // etcd had started (its data directory is there) and is gone again, with both members.
    expect(existsSync(join(data, 'etcd'))).toBe(true);
    const running = () => {
      const found: string[] = [];
      for (const entry of readdirSync('/proc')) {
        if (!/^\d+$/.test(entry) || gone(Number(entry))) continue;
        try {
          const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
          if (args.includes(data)) found.push(args.replaceAll('\0', ' '));
        } catch {}
      }
      return found;
    };
    expect(running()).toEqual([]);
  }, 60_000);
});
