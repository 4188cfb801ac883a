// `serve` with the TLS settings and the CLI's TLS flags, as processes: a broker configured with a
// certificate serves only TLS clients; the CLI reaches it with --tls-ca (or its environment
// variable) and fails with a clear error without it; settings that cannot work refuse to start.

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/cli/main.js';
import { makeCertificates, opensslAvailable, type TestCertificates } from '../broker/server/helpers/certs.js';
import { serveRefusal, startBroker } from '../harness/broker.js';
import { tempDir, useTempDir } from '../harness/temp-dir.js';

let certs: TestCertificates;

async function cli(env: NodeJS.ProcessEnv, ...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(argv, { env, out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe.skipIf(!opensslAvailable())('serve and the CLI over TLS', () => {
  const certsDir = useTempDir('ms-cli-certs-', 'all');
  beforeAll(async () => {
    certs = await makeCertificates(certsDir.path);
  });

  it('serves TLS clients only; the CLI connects with --tls-ca or MEMORYSTREAMER_CLI_TLS_CA', async () => {
    const broker = await startBroker({
      env: {
        MEMORYSTREAMER_SERVER_TLS_CERT_FILE: join(certs.dir, 'broker.pem'),
        MEMORYSTREAMER_SERVER_TLS_KEY_FILE: join(certs.dir, 'broker.key'),
      },
    });
    const address = `127.0.0.1:${broker.port}`;
    const created = await cli(
      {},
      '--broker',
      address,
      '--tls-ca',
      join(certs.dir, 'ca.pem'),
      'topic',
      'create',
      'tls-topic',
    );
    expect(created.err).toBe('');
    expect(created.code).toBe(0);
    const listed = await cli(
      { MEMORYSTREAMER_CLI_TLS_CA: join(certs.dir, 'ca.pem') },
      '--json',
      '--broker',
      address,
      'topic',
      'list',
    );
    expect(listed.code).toBe(0);
    expect(listed.out).toContain('tls-topic');
    // Plain TCP is told to use TLS, with a code.
    const plain = await cli({}, '--broker', address, 'topic', 'list');
    expect(plain.code).not.toBe(0);
    expect(plain.err).toMatch(/TLS_REQUIRED \(806\).*--tls/);
    // A CLI client certificate without its key is refused before connecting.
    const halfPair = await cli(
      {},
      '--broker',
      address,
      '--tls-cert',
      join(certs.dir, 'client.pem'),
      'topic',
      'list',
    );
    expect(halfPair.err).toMatch(/INVALID_CONFIG.*--tls-cert and --tls-key go together/);
    expect(await broker.stop()).toBe(0);
  });

  it('refuses to start with a key and no certificate, a file it cannot read, or client auth without TLS', async () => {
    const dir = await tempDir('ms-tls-config-');
    const config = join(dir, 'broker.toml');
    for (const [server, message] of [
      [
        `tls_key_file = "${join(certs.dir, 'broker.key')}"`,
        /tls_cert_file and server.tls_key_file go together/,
      ],
      [
        `tls_cert_file = "${join(dir, 'missing.pem')}"\ntls_key_file = "${join(certs.dir, 'broker.key')}"`,
        /server.tls_cert_file: cannot read/,
      ],
      ['tls_client_auth = "require"', /need server.tls_cert_file/],
    ] as const) {
      await writeFile(
        config,
        `[server]\nport = 0\n${server}\n[storage]\ndata_dir = "${join(dir, 'data')}"\n`,
      );
      const refusal = await serveRefusal({ configFile: config });
      expect(refusal.stderr).toMatch(message);
      expect(refusal.stderr).toMatch(/INVALID_CONFIG/);
    }
  });
});
