// Hot reload of a running `memorystreamer serve`: reloadable settings apply without a restart,
// others are reported, a bad file is refused and the running configuration stays.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/protocol/error-codes.js';
import { RawClient } from '../broker/server/helpers/raw-client.js';

describe('configuration reload', () => {
  it('applies reloadable settings on SIGHUP and on file change, and refuses a bad file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ms-reload-'));
    const file = join(dir, 'memorystreamer.toml');
    const base = `[server]\nport = 0\n[admin]\nport = 0\n[storage]\ndata_dir = "${join(dir, 'data')}"\n[log]\nformat = "json"\n`;
    await writeFile(file, `${base}[topics]\npartitions = 1\n`);
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--config', file, '--json'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, MEMORYSTREAMER_LOG_LEVEL: undefined },
      },
    );
    const logs: Array<{ msg: string; keys?: string; trigger?: string }> = [];
    const rawStderr: string[] = [];
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const lines = stderr.split('\n');
      stderr = lines.pop()!;
      for (const line of lines) {
        if (line.startsWith('{')) logs.push(JSON.parse(line) as { msg: string });
        else rawStderr.push(line);
      }
    });
    // Every wait has a deadline and names what it saw, and a broker that died is reported as
    // such, so a failure here says why instead of running into the test timeout.
    const exited = new Promise<string>((resolve) =>
      child.once('exit', (code, signal) => resolve(`exited with ${code ?? signal}`)),
    );
    const diagnosis = () =>
      `broker ${child.exitCode !== null || child.signalCode !== null ? `exited (${child.exitCode ?? child.signalCode})` : 'running'}; logs: ${logs.map((l) => l.msg).join(' | ')}; stderr: ${rawStderr.slice(-10).join(' / ')}`;
    const waitLog = async (msg: string) => {
      const deadline = Date.now() + 20_000;
      while (!logs.some((l) => l.msg === msg)) {
        if (Date.now() > deadline) throw new Error(`no log line "${msg}"; ${diagnosis()}`);
        await new Promise((r) => setTimeout(r, 25));
      }
      return logs.find((l) => l.msg === msg)!;
    };
    const opened: RawClient[] = [];
    try {
      const port = await Promise.race([
        new Promise<number>((resolve) => {
          child.stdout.once('data', (d: Buffer) =>
            resolve((JSON.parse(d.toString().split('\n')[0]!) as { port: number }).port),
          );
        }),
        exited.then((how) => Promise.reject(new Error(`broker ${how} before listening; ${diagnosis()}`))),
      ]);
      await waitLog('broker started');

      await writeFile(
        file,
        base.replace('port = 0\n[admin]', 'port = 0\nmax_connections_per_address = 1\n[admin]'),
      );
      child.kill('SIGHUP');
      const reloaded = await waitLog('configuration reloaded');
      expect(reloaded.keys).toContain('server.max_connections_per_address');
      const first = await RawClient.open(port);
      opened.push(first);
      await first.handshake();
      const second = await RawClient.open(port);
      opened.push(second);
      await second.waitFor((f) => f.header.errorCode === ErrorCode.TOO_MANY_CONNECTIONS);
      first.destroy();

      logs.length = 0;
      await writeFile(file, base.replace('port = 0\n[admin]', 'port = 7777\n[admin]'));
      await waitLog('changed settings need a restart');

      logs.length = 0;
      await writeFile(file, `${base}[topics]\npartitions = "many"\n`);
      const refused = await waitLog('configuration reload refused; the running configuration stays');
      expect(refused.trigger).toBe('file change');
    } finally {
      for (const client of opened) client.destroy();
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(killer);
      }
      await rm(dir, { recursive: true, force: true });
    }
  });
});
