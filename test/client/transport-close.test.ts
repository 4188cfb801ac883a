// close() of a TCP transport while a connection is being opened: what waits for it fails with
// CONNECTION_CLOSED (retriable: the caller was closing anyway), nothing is sent after close, and
// no connection outlives the transport (one would keep the process alive). Real brokers: an
// embedded one whose connections are counted, and a spawned one frozen with SIGSTOP (the kernel
// accepts the connection, nothing answers the handshake). The cluster transport's side is in
// test/cluster/cluster-transport-close.test.ts.

import { afterEach, describe, expect, it } from 'vitest';
import { TcpTransport } from '../../src/client/tcp-transport.js';
import { Broker } from '../../src/embedded/broker.js';
import { ErrorCode } from '../../src/protocol/error-codes.js';
import { startBroker } from '../harness/broker.js';
import { tempDir } from '../harness/temp-dir.js';
import { until } from '../harness/until.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const CLOSED = { code: ErrorCode.CONNECTION_CLOSED, retriable: true };

/** Long enough for a connection left open to reach the broker and be counted. */
const SETTLE_MS = 500;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function embeddedBroker(): Promise<Broker> {
  const broker = await Broker.start({ dataDir: await tempDir('ms-transport-close-'), port: 0 });
  cleanups.push(() => broker.stop({ deadlineMs: 500 }));
  return broker;
}

/** The TCP sockets of this process (the client's, in a test whose broker is another process). */
function openSockets(): number {
  return process.getActiveResourcesInfo().filter((type) => type === 'TCPSocketWrap').length;
}

describe('closing a TCP transport while it connects', () => {
  it('fails a request waiting for the connection and leaves no connection open', async () => {
    const broker = await embeddedBroker();
    const transport = new TcpTransport({ brokers: [{ host: '127.0.0.1', port: broker.address!.port }] });
    const started = performance.now();
    const request = transport.request('listTopics', {}, { timeoutMs: 1000 });
    await transport.close();
    await expect(request).rejects.toMatchObject(CLOSED);
    // At once, not when a connect timer or the request's deadline ran out.
    expect(performance.now() - started).toBeLessThan(500);
    await sleep(SETTLE_MS);
    expect(broker.server!.connectionCount).toBe(0);
  });

  it('fails a subscription waiting for the connection and leaves no connection open', async () => {
    const broker = await embeddedBroker();
    await broker.core.execute('createTopic', { name: 'feed', partitions: 1 });
    const transport = new TcpTransport({ brokers: [{ host: '127.0.0.1', port: broker.address!.port }] });
    const errors: Error[] = [];
    const subscription = transport.subscribe(
      { topic: 'feed', partition: 0, offset: -2n, credit: 1 << 20 },
      { onBatches: () => undefined, onError: (error) => errors.push(error) },
      { timeoutMs: 1000 },
    );
    await transport.close();
    await expect(subscription).rejects.toMatchObject(CLOSED);
    await sleep(SETTLE_MS);
    expect(broker.server!.connectionCount).toBe(0);
    // The subscription never existed: its handlers hear nothing.
    expect(errors).toEqual([]);
  });

  it('ends at once a connection whose handshake the broker has not answered', async () => {
    const broker = await startBroker();
    // Frozen: the kernel still accepts the connection, nothing answers the handshake.
    process.kill(broker.pid, 'SIGSTOP');
    cleanups.push(async () => {
      process.kill(broker.pid, 'SIGCONT');
      await broker.stop();
    });
    const before = openSockets();
    const transport = new TcpTransport({
      brokers: [{ host: '127.0.0.1', port: broker.port }],
      connectTimeoutMs: 5000,
    });
    const request = transport.request('listTopics', {}, { timeoutMs: 1000 });
    request.catch(() => undefined);
    await until(() => openSockets() > before, { what: 'the client connects' });
    await sleep(100);
    const closing = performance.now();
    await transport.close();
    await expect(request).rejects.toMatchObject(CLOSED);
    expect(performance.now() - closing).toBeLessThan(500);
    await until(() => openSockets() === before, { what: 'the client socket closed', timeoutMs: 1000 });
  }, 30_000);
});
