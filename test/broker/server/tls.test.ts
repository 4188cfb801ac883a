// The client listener over TLS, with real certificates (openssl) and the real client: messages
// round-trip encrypted; a client that does not trust the broker's certificate (unknown CA, expired),
// a plain-TCP client, a TLS client at a plain listener, and (with client authentication) a client
// without a certificate from the configured CA are all refused, each with its own code and within
// the connect timeout; certificates replaced in place serve new connections while open ones stay;
// certificates that do not load are refused with INVALID_CONFIG.

import { connect as netConnect } from 'node:net';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BrokerCore } from '../../../src/broker/broker-core.js';
import { NetworkServer } from '../../../src/broker/server/network-server.js';
import { type ServerTlsOptions, serverTls } from '../../../src/broker/server/tls.js';
import { connect } from '../../../src/client/connect.js';
import { tempDir, useTempDir } from '../../harness/temp-dir.js';
import { until } from '../../harness/until.js';
import { makeCertificates, opensslAvailable, type TestCertificates } from './helpers/certs.js';

let certs: TestCertificates;
const cleanups: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startServer(tls: ServerTlsOptions | undefined, maxConnections?: number) {
  const dataDir = await tempDir('ms-tls-');
  const core = await BrokerCore.start({ dataDir });
  const server = await NetworkServer.start({
    core,
    host: '127.0.0.1',
    port: 0,
    ...(tls !== undefined ? { tls } : {}),
    ...(maxConnections !== undefined ? { limits: { maxConnections } } : {}),
  });
  cleanups.push(async () => {
    await server.shutdown({ deadlineMs: 500 });
    await core.close();
  });
  return server;
}

async function startTlsBroker(tls: ServerTlsOptions, maxConnections?: number): Promise<string> {
  const server = await startServer(tls, maxConnections);
  return `127.0.0.1:${server.address.port}`;
}

/** A client that must be refused, with the time the refusal took. */
async function refusal(options: Parameters<typeof connect>[0]) {
  const started = Date.now();
  const error = await connect(options).then(
    async (client) => {
      await client.close();
      return new Error('connected');
    },
    (e: unknown) => e as Error,
  );
  return { error, ms: Date.now() - started };
}

describe.skipIf(!opensslAvailable())('TLS listener', () => {
  const certsDir = useTempDir('ms-certs-', 'all');
  beforeAll(async () => {
    certs = await makeCertificates(certsDir.path);
  });

  it('serves a client that trusts its certificate; messages round-trip', async () => {
    const address = await startTlsBroker({ cert: certs.serverCert, key: certs.serverKey });
    const client = await connect({ brokers: address, tls: { ca: certs.ca } });
    try {
      await client.admin.createTopic({ name: 'secure', partitions: 1 });
      const receipt = await client
        .producer()
        .send({ topic: 'secure', key: 'k', value: 'encrypted on the wire' });
      expect(receipt.offset).toBe(0n);
      const consumer = client.consumer({ topics: ['secure'], from: 'earliest' });
      await consumer.start();
      let message = await consumer.next();
      while (message === null) message = await consumer.next();
      expect(message.value!.toString()).toBe('encrypted on the wire');
      await consumer.close();
    } finally {
      await client.close();
    }
  });

  it('refuses clients that do not trust the certificate, and plain-TCP clients', async () => {
    const address = await startTlsBroker({ cert: certs.serverCert, key: certs.serverKey });
    // The broker's certificate is signed by a CA the client does not know.
    await expect(
      connect({ brokers: address, tls: { ca: certs.otherCa }, connectTimeoutMs: 3000 }),
    ).rejects.toMatchObject({
      codeName: 'TLS_CERTIFICATE_REJECTED',
      code: 808,
      cause: expect.objectContaining({ code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }),
    });
    // A client speaking plain TCP is told, in a frame it can read, to use TLS: at once, not after
    // its connect timeout.
    const plain = await refusal({ brokers: address, connectTimeoutMs: 20_000 });
    expect(plain.error).toMatchObject({ codeName: 'TLS_REQUIRED', code: 806 });
    expect(plain.error.message).toMatch(/memorystreamer\+tls:\/\//);
    expect(plain.ms).toBeLessThan(20_000);
    // The broker still serves a good client afterwards.
    const client = await connect({ brokers: address, tls: { ca: certs.ca } });
    await client.admin.listTopics();
    await client.close();
  });

  it('with client authentication, admits only clients with a certificate from the configured CA', async () => {
    const address = await startTlsBroker({
      cert: certs.serverCert,
      key: certs.serverKey,
      ca: certs.ca,
      clientAuth: 'require',
    });
    const trusted = await connect({
      brokers: address,
      tls: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey },
    });
    await trusted.admin.listTopics();
    await trusted.close();
    // Without a certificate, or with one of another CA: the broker's alert, named.
    for (const tls of [
      { ca: certs.ca },
      { ca: certs.ca, cert: certs.otherClientCert, key: certs.otherClientKey },
    ]) {
      const refused = await refusal({ brokers: address, tls, connectTimeoutMs: 20_000 });
      expect(refused.error).toMatchObject({ codeName: 'TLS_HANDSHAKE_FAILED', code: 809 });
      expect(refused.ms).toBeLessThan(20_000);
    }
  });

  it('with client authentication requested, admits clients with and without a certificate', async () => {
    const address = await startTlsBroker({
      cert: certs.serverCert,
      key: certs.serverKey,
      ca: certs.ca,
      clientAuth: 'request',
    });
    for (const tls of [{ ca: certs.ca }, { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey }]) {
      const client = await connect({ brokers: address, tls });
      await client.admin.listTopics();
      await client.close();
    }
  });

  it('a TLS client at a plain listener is told the listener does not speak TLS, at once', async () => {
    const server = await startServer(undefined);
    const refused = await refusal({
      brokers: `127.0.0.1:${server.address.port}`,
      tls: { ca: certs.ca },
      connectTimeoutMs: 20_000,
    });
    expect(refused.error).toMatchObject({ codeName: 'TLS_NOT_OFFERED', code: 807 });
    expect(refused.ms).toBeLessThan(20_000);
  });

  it('a client refuses an expired broker certificate', async () => {
    const address = await startTlsBroker({ cert: certs.expiredServerCert, key: certs.expiredServerKey });
    await expect(
      connect({ brokers: address, tls: { ca: certs.ca }, connectTimeoutMs: 3000 }),
    ).rejects.toMatchObject({
      codeName: 'TLS_CERTIFICATE_REJECTED',
      cause: expect.objectContaining({ code: 'CERT_HAS_EXPIRED' }),
    });
  });

  it('replaced certificates serve new connections; an open connection stays up', async () => {
    const server = await startServer({ cert: certs.serverCert, key: certs.serverKey });
    const address = `127.0.0.1:${server.address.port}`;
    const open = await connect({ brokers: address, tls: { ca: certs.ca } });
    try {
      await open.admin.createTopic({ name: 'rotated', partitions: 1 });
      // The rotation moves to a certificate of another CA: who trusts which tells them apart.
      server.reloadTls({ cert: certs.otherServerCert, key: certs.otherServerKey });
      const fresh = await connect({ brokers: address, tls: { ca: certs.otherCa } });
      await fresh.admin.listTopics();
      await fresh.close();
      await expect(
        connect({ brokers: address, tls: { ca: certs.ca }, connectTimeoutMs: 3000 }),
      ).rejects.toMatchObject({ codeName: 'TLS_CERTIFICATE_REJECTED' });
      // The connection opened before the rotation still works, on its own TLS session.
      const receipt = await open.producer().send({ topic: 'rotated', value: 'still here' });
      expect(receipt.offset).toBe(0n);
      // A certificate that does not load is refused; the running one stays.
      expect(() => server.reloadTls({ cert: 'not a certificate', key: certs.serverKey })).toThrow(
        expect.objectContaining({ codeName: 'INVALID_CONFIG' }),
      );
      const again = await connect({ brokers: address, tls: { ca: certs.otherCa } });
      await again.close();
    } finally {
      await open.close();
    }
  });

  it('memorystreamer+tls:// addresses speak TLS; a list that mixes forms is refused', async () => {
    const address = await startTlsBroker({ cert: certs.serverCert, key: certs.serverKey });
    // The URL form alone means the system CAs, which do not know the test CA: the TLS is tried.
    await expect(
      connect({ brokers: `memorystreamer+tls://${address}`, connectTimeoutMs: 3000 }),
    ).rejects.toMatchObject({ codeName: 'TLS_CERTIFICATE_REJECTED' });
    const client = await connect({ brokers: `memorystreamer+tls://${address}`, tls: { ca: certs.ca } });
    await client.admin.listTopics();
    await client.close();
    await expect(
      connect({ brokers: [`memorystreamer+tls://${address}`, `memorystreamer://${address}`] }),
    ).rejects.toMatchObject({ codeName: 'INVALID_CONFIG' });
  });

  it('closes connections over its limit at once, without a TLS handshake', async () => {
    const address = await startTlsBroker({ cert: certs.serverCert, key: certs.serverKey }, 1);
    const first = await connect({ brokers: address, tls: { ca: certs.ca } });
    try {
      const [host, port] = address.split(':');
      const closed = await new Promise<{ bytes: number }>((resolve) => {
        let bytes = 0;
        const socket = netConnect({ host: host!, port: Number(port) });
        socket.on('data', (chunk) => {
          bytes += chunk.length;
        });
        socket.on('error', () => undefined);
        socket.on('close', () => resolve({ bytes }));
      });
      // No ServerHello, no error frame: the refused socket was closed without a byte.
      expect(closed.bytes).toBe(0);
      await first.admin.listTopics();
    } finally {
      await first.close();
    }
  });

  it('counts a handshake in progress against the limit, and frees its place when it ends', async () => {
    const address = await startTlsBroker({ cert: certs.serverCert, key: certs.serverKey }, 1);
    const [host, port] = address.split(':');
    // A peer that connects and never says hello holds the one place while its handshake lasts.
    const silent = netConnect({ host: host!, port: Number(port) });
    silent.on('error', () => undefined);
    await new Promise<void>((resolve) => silent.once('connect', () => resolve()));
    await expect(
      connect({ brokers: address, tls: { ca: certs.ca }, connectTimeoutMs: 3000 }),
    ).rejects.toMatchObject({ codeName: 'BROKER_NOT_AVAILABLE' });
    silent.destroy();
    // Its place is free again once it left.
    await until(
      async () => {
        const client = await connect({ brokers: address, tls: { ca: certs.ca }, connectTimeoutMs: 3000 });
        await client.close();
        return true;
      },
      { what: 'a client connects again', timeoutMs: 10_000 },
    );
  });

  it('refuses at start a certificate that does not load, or client authentication without a CA', () => {
    expect(() => serverTls({ cert: 'not a certificate', key: certs.serverKey })).toThrow(
      expect.objectContaining({ codeName: 'INVALID_CONFIG' }),
    );
    expect(() => serverTls({ cert: certs.serverCert, key: certs.serverKey, clientAuth: 'require' })).toThrow(
      /needs the CA/,
    );
  });
});
