// Hot reload of a running `memorystreamer serve`: reloadable settings apply without a restart,
// others are reported, a bad file is refused and the running configuration stays.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/protocol/error-codes.js';
import { RawClient } from '../broker/server/helpers/raw-client.js';
import { startBroker } from '../harness/broker.js';
import { tempDir } from '../harness/temp-dir.js';

describe('configuration reload', () => {
  it('applies reloadable settings on SIGHUP and on file change, and refuses a bad file', async () => {
    const dir = await tempDir('ms-reload-');
    const file = join(dir, 'memorystreamer.toml');
    const base = `[server]\nport = 0\n[admin]\nport = 0\n[storage]\ndata_dir = "${join(dir, 'data')}"\n[log]\nformat = "json"\n`;
    await writeFile(file, `${base}[topics]\npartitions = 1\n`);
    // Every setting from the file (no flags), so that changing it is what the reload sees. Every
    // wait has a deadline and names what the broker wrote, and a broker that died is reported as
    // such, so a failure here says why instead of running into the test timeout.
    const broker = await startBroker({
      configFile: file,
      host: null,
      port: null,
      adminPort: null,
      env: { MEMORYSTREAMER_LOG_LEVEL: undefined },
    });
    const opened: RawClient[] = [];
    try {
      const port = broker.port;
      await broker.waitForLog('broker started');

      await writeFile(
        file,
        base.replace('port = 0\n[admin]', 'port = 0\nmax_connections_per_address = 1\n[admin]'),
      );
      broker.child.kill('SIGHUP');
      const reloaded = await broker.waitForLog('configuration reloaded');
      expect(reloaded.keys).toContain('server.max_connections_per_address');
      const first = await RawClient.open(port);
      opened.push(first);
      await first.handshake();
      const second = await RawClient.open(port);
      opened.push(second);
      await second.waitFor((f) => f.header.errorCode === ErrorCode.TOO_MANY_CONNECTIONS);
      first.destroy();

      let after = broker.logs().length;
      await writeFile(file, base.replace('port = 0\n[admin]', 'port = 7777\n[admin]'));
      await broker.waitForLog('changed settings need a restart', { after });

      after = broker.logs().length;
      await writeFile(file, `${base}[topics]\npartitions = "many"\n`);
      const refused = await broker.waitForLog(
        'configuration reload refused; the running configuration stays',
        {
          after,
        },
      );
      expect(refused.trigger).toBe('file change');
    } finally {
      for (const client of opened) client.destroy();
      await broker.stop();
    }
  });
});
