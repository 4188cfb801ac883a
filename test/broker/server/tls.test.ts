// The client listener over TLS, with real certificates (openssl) and the real client: messages
// round-trip encrypted; a client that does not trust the broker's certificate, a plain-TCP client,
// and (with client authentication) a client without a certificate from the configured CA are all
// refused; certificates that do not load are refused at start with INVALID_CONFIG.

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

async function startTlsBroker(tls: ServerTlsOptions, maxConnections?: number): Promise<string> {
  const dataDir = await tempDir('ms-tls-');
  const core = await BrokerCore.start({ dataDir });
  const server = await NetworkServer.start({
    core,
    host: '127.0.0.1',
    port: 0,
    tls,
    ...(maxConnections !== undefined ? { limits: { maxConnections } } : {}),
  });
  cleanups.push(async () => {
    await server.shutdown({ deadlineMs: 500 });
    await core.close();
  });
  return `127.0.0.1:${server.address.port}`;
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
      codeName: 'BROKER_NOT_AVAILABLE',
      cause: expect.objectContaining({ code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }),
    });
    // A client speaking plain TCP gets no answer it can read: the connection fails.
    await expect(connect({ brokers: address, connectTimeoutMs: 3000 })).rejects.toMatchObject({
      codeName: 'BROKER_NOT_AVAILABLE',
    });
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
    for (const tls of [
      { ca: certs.ca },
      { ca: certs.ca, cert: certs.otherClientCert, key: certs.otherClientKey },
    ]) {
      await expect(connect({ brokers: address, tls, connectTimeoutMs: 3000 })).rejects.toMatchObject({
        codeName: 'BROKER_NOT_AVAILABLE',
      });
    }
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
