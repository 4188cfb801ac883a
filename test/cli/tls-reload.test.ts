// `serve` with the [tls] section, as a process: the admin endpoint serves HTTPS with the broker's
// certificate; the certificate files replaced on disk are taken up on SIGHUP (and on the file
// change alone) without closing the connections already open, and new connections get the new
// certificate; the CLI reaches the broker through a profile's TLS settings; a configuration that
// mixes [tls] and the older server.tls_* keys is refused.

import { copyFile, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/cli/main.js';
import { connect } from '../../src/client/connect.js';
import { makeCertificates, opensslAvailable, type TestCertificates } from '../broker/server/helpers/certs.js';
import { serveRefusal, startBroker } from '../harness/broker.js';
import { tempDir, useTempDir } from '../harness/temp-dir.js';
import { until } from '../harness/until.js';

let certs: TestCertificates;

async function cli(env: NodeJS.ProcessEnv, ...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(argv, { env, out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** GET over HTTPS, trusting `ca`: the status code, or the error's code. */
function httpsGet(port: number, path: string, ca: string): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, ca, method: 'GET' }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    req.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    req.end();
  });
}

/** A client trusting `ca` connects: true, or the code of its refusal. */
async function connects(port: number, ca: string): Promise<true | string> {
  try {
    const client = await connect({ brokers: `127.0.0.1:${port}`, tls: { ca }, connectTimeoutMs: 3000 });
    await client.close();
    return true;
  } catch (error) {
    return (error as { codeName?: string }).codeName ?? (error as Error).message;
  }
}

describe.skipIf(!opensslAvailable())('serve with [tls]: reload and HTTPS admin', () => {
  const certsDir = useTempDir('ms-reload-certs-', 'all');
  beforeAll(async () => {
    certs = await makeCertificates(certsDir.path);
  });

  it('reloads the certificate on SIGHUP and on file change; open connections stay; admin is HTTPS', async () => {
    const dir = await tempDir('ms-tls-reload-');
    const live = { cert: join(dir, 'live.pem'), key: join(dir, 'live.key') };
    await copyFile(join(certs.dir, 'broker.pem'), live.cert);
    await copyFile(join(certs.dir, 'broker.key'), live.key);
    const config = join(dir, 'broker.toml');
    await writeFile(
      config,
      `[tls]\ncert_file = "${live.cert}"\nkey_file = "${live.key}"\n[storage]\ndata_dir = "${join(dir, 'data')}"\n`,
    );
    const broker = await startBroker({ configFile: config, logLevel: 'info' });
    const port = broker.port;
    expect(await httpsGet(broker.adminPort!, '/healthz', certs.ca)).toBe(200);
    const open = await connect({ brokers: `127.0.0.1:${port}`, tls: { ca: certs.ca } });
    try {
      await open.admin.createTopic({ name: 'kept', partitions: 1 });
      // Rotation 1, by SIGHUP: the files now hold a certificate of the other CA.
      const before = broker.logs().length;
      await copyFile(join(certs.dir, 'broker-other.pem'), live.cert);
      await copyFile(join(certs.dir, 'broker-other.key'), live.key);
      process.kill(broker.pid, 'SIGHUP');
      await broker.waitForLog(
        (line) => line.msg === 'TLS certificates reloaded' && line.trigger === 'SIGHUP',
        {
          after: before,
        },
      );
      expect(await connects(port, certs.otherCa)).toBe(true);
      expect(await connects(port, certs.ca)).toBe('TLS_CERTIFICATE_REJECTED');
      expect(await httpsGet(broker.adminPort!, '/healthz', certs.otherCa)).toBe(200);
      // The connection opened before the rotation is still up.
      expect((await open.producer().send({ topic: 'kept', value: 'one' })).offset).toBe(0n);
      // Rotation 2, the files alone change back: the watch takes it up.
      await copyFile(join(certs.dir, 'broker.pem'), live.cert);
      await copyFile(join(certs.dir, 'broker.key'), live.key);
      await until(async () => (await connects(port, certs.ca)) === true, {
        what: 'the original certificate served again after the file change',
        timeoutMs: 15_000,
      });
      expect((await open.producer().send({ topic: 'kept', value: 'two' })).offset).toBe(1n);
      // A half-written rotation (a key that does not match) is refused; the running one stays.
      const refusedAt = broker.logs().length;
      await copyFile(join(certs.dir, 'client.key'), live.key);
      process.kill(broker.pid, 'SIGHUP');
      await broker.waitForLog('TLS certificate reload refused; the running certificates stay', {
        after: refusedAt,
      });
      expect(await connects(port, certs.ca)).toBe(true);
    } finally {
      await open.close();
    }
    expect(await broker.stop()).toBe(0);
  });

  it('the CLI takes TLS from a profile; memorystreamer+tls:// in --broker', async () => {
    const broker = await startBroker({
      env: {
        MEMORYSTREAMER_TLS_CERT_FILE: join(certs.dir, 'broker.pem'),
        MEMORYSTREAMER_TLS_KEY_FILE: join(certs.dir, 'broker.key'),
        MEMORYSTREAMER_TLS_CA_FILE: join(certs.dir, 'ca.pem'),
        MEMORYSTREAMER_TLS_CLIENT_AUTH: 'require',
      },
    });
    const dir = await tempDir('ms-profiles-');
    const profiles = join(dir, 'cli.toml');
    // Paths relative to the profiles file.
    await copyFile(join(certs.dir, 'ca.pem'), join(dir, 'ca.pem'));
    await copyFile(join(certs.dir, 'client.pem'), join(dir, 'client.pem'));
    await copyFile(join(certs.dir, 'client.key'), join(dir, 'client.key'));
    await writeFile(
      profiles,
      `[profiles.secure]\nbrokers = "127.0.0.1:${broker.port}"\ntls_ca = "ca.pem"\ntls_cert = "client.pem"\ntls_key = "client.key"\n[profiles.nocert]\nbrokers = "127.0.0.1:${broker.port}"\ntls_ca = "ca.pem"\n`,
    );
    const env = { MEMORYSTREAMER_CLI_CONFIG: profiles };
    const created = await cli(env, '--profile', 'secure', 'topic', 'create', 'profiled');
    expect(created.err).toBe('');
    expect(created.code).toBe(0);
    // Without a client certificate the broker refuses, and the CLI says why.
    const noCert = await cli(env, '--profile', 'nocert', 'topic', 'list');
    expect(noCert.code).not.toBe(0);
    expect(noCert.err).toMatch(/TLS_HANDSHAKE_FAILED \(809\)/);
    // The URL form with the flags.
    const byUrl = await cli(
      {},
      '--json',
      '--broker',
      `memorystreamer+tls://127.0.0.1:${broker.port}`,
      '--tls-ca',
      join(certs.dir, 'ca.pem'),
      '--tls-cert',
      join(certs.dir, 'client.pem'),
      '--tls-key',
      join(certs.dir, 'client.key'),
      'topic',
      'list',
    );
    expect(byUrl.code).toBe(0);
    expect(byUrl.out).toContain('profiled');
    expect(await broker.stop()).toBe(0);
  });

  it('refuses a configuration that sets TLS both in [tls] and with server.tls_*', async () => {
    const dir = await tempDir('ms-tls-mixed-');
    const config = join(dir, 'broker.toml');
    await writeFile(
      config,
      `[server]\nport = 0\ntls_cert_file = "${join(certs.dir, 'broker.pem')}"\n[tls]\nkey_file = "${join(certs.dir, 'broker.key')}"\n[storage]\ndata_dir = "${join(dir, 'data')}"\n`,
    );
    const refusal = await serveRefusal({ configFile: config });
    expect(refusal.stderr).toMatch(/INVALID_CONFIG.*both in \[tls\] and with the server.tls_\* keys/);
  });
});
