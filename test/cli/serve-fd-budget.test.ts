// A configuration reload cannot raise the connection cap of `serve` past what its open-files
// limit allows (the file-descriptor budget): run under `prlimit --nofile=512:512`.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/protocol/error-codes.js';
import { RawClient } from '../broker/server/helpers/raw-client.js';

interface LogLine {
  msg: string;
  maxConnections?: number;
  allowed?: number;
  configured?: number;
}

describe('serve under a small open-files limit', () => {
  it('keeps the connection cap within the budget across a reload', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ms-serve-fd-'));
    const file = join(dir, 'memorystreamer.toml');
    const config = (maxConnections: number) =>
      `[server]\nport = 0\nmax_connections = ${maxConnections}\n[admin]\nport = 0\n[storage]\ndata_dir = "${join(dir, 'data')}"\n[log]\nformat = "json"\nlevel = "info"\n`;
    await writeFile(file, config(50));
    const child = spawn(
      'prlimit',
      [
        '--nofile=512:512',
        process.execPath,
        '--import',
        'tsx',
        'src/cli/main.ts',
        'serve',
        '--config',
        file,
        '--json',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MEMORYSTREAMER_LOG_LEVEL: undefined } },
    );
    const logs: LogLine[] = [];
    let pending = '';
    child.stderr.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) if (line.startsWith('{')) logs.push(JSON.parse(line) as LogLine);
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const waitLog = async (match: (line: LogLine) => boolean, what: string) => {
      const deadline = Date.now() + 20_000;
      for (;;) {
        const found = logs.find(match);
        if (found !== undefined) return found;
        if (Date.now() > deadline || child.exitCode !== null)
          throw new Error(`no log line ${what}; saw: ${logs.map((l) => l.msg).join(' | ')}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    };
    const opened: RawClient[] = [];
    try {
      const port = await new Promise<number>((resolve) => {
        child.stdout.once('data', (d: Buffer) =>
          resolve((JSON.parse(d.toString().split('\n')[0]!) as { port: number }).port),
        );
      });
      // Configured below what the limit allows: the configured value holds.
      const budget = await waitLog((l) => l.msg === 'file descriptors budgeted', 'file descriptors budgeted');
      expect(budget.maxConnections).toBe(50);

      await writeFile(file, config(100_000));
      child.kill('SIGHUP');
      const capped = await waitLog((l) => /capped/.test(l.msg), 'capped');
      expect(capped.configured).toBe(100_000);
      const allowed = capped.allowed!;
      expect(allowed).toBeGreaterThan(50);
      expect(allowed).toBeLessThan(512);
      for (let i = 0; i < allowed; i++) {
        const client = await RawClient.open(port);
        opened.push(client);
        await client.handshake();
      }
      const late = await RawClient.open(port);
      opened.push(late);
      const refused = await late.waitFor((f) => f.header.errorCode !== 0);
      expect(refused.header.errorCode).toBe(ErrorCode.TOO_MANY_CONNECTIONS);
    } finally {
      for (const client of opened) client.destroy();
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(killer);
      await rm(dir, { recursive: true, force: true });
    }
  });
});
