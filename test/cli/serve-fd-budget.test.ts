// A configuration reload cannot raise the connection cap of `serve` past what its open-files
// limit allows (the file-descriptor budget): run under `prlimit --nofile=512:512`.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/protocol/error-codes.js';
import { RawClient } from '../broker/server/helpers/raw-client.js';
import { startBroker } from '../harness/broker.js';
import { tempDir } from '../harness/temp-dir.js';

describe('serve under a small open-files limit', () => {
  it('keeps the connection cap within the budget across a reload', async () => {
    const dir = await tempDir('ms-serve-fd-');
    const file = join(dir, 'memorystreamer.toml');
    const config = (maxConnections: number) =>
      `[server]\nport = 0\nmax_connections = ${maxConnections}\n[admin]\nport = 0\n[storage]\ndata_dir = "${join(dir, 'data')}"\n[log]\nformat = "json"\nlevel = "info"\n`;
    await writeFile(file, config(50));
    const broker = await startBroker({
      configFile: file,
      host: null,
      port: null,
      adminPort: null,
      wrapper: ['prlimit', '--nofile=512:512'],
      env: { MEMORYSTREAMER_LOG_LEVEL: undefined },
    });
    const opened: RawClient[] = [];
    try {
      const port = broker.port;
      // Configured below what the limit allows: the configured value holds.
      const budget = await broker.waitForLog('file descriptors budgeted');
      expect(budget.maxConnections).toBe(50);

      await writeFile(file, config(100_000));
      broker.child.kill('SIGHUP');
      const capped = await broker.waitForLog((l) => /capped/.test(l.msg));
      expect(capped.configured).toBe(100_000);
      const allowed = capped.allowed as number;
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
      await broker.stop();
    }
  });
});
