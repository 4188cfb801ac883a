// The producer keeps retrying a send through a broker outage for up to `deliveryTimeoutMs`
// (default 30 s), the way a failover or a restart needs: a send made while the only broker is down
// succeeds once it is back 1.5 s later (longer than a fixed five-retry budget of 20…320 ms
// backoffs lasted), and with a short delivery timeout the same send fails with the last retriable
// error once that time has passed. A send that has to ask for the topic's partition count and a
// producer id first (a new producer's first send) waits for the broker the same way. A real broker
// over TCP, stopped and started again on the same port and data directory.
import { afterEach, describe, expect, it } from 'vitest';
import type { Client } from '../../src/client/client.js';
import { connect } from '../../src/client/connect.js';
import { MemoryStreamerError } from '../../src/common/errors.js';
import { Broker } from '../../src/embedded/broker.js';
import { useTempDir } from '../harness/temp-dir.js';

const scratch = useTempDir('ms-delivery-timeout-', 'each');
let broker: Broker | null = null;
let client: Client | null = null;

afterEach(async () => {
  await client?.close();
  await broker?.stop();
  client = null;
  broker = null;
});

async function startWithTopic(): Promise<number> {
  broker = await Broker.start({ dataDir: scratch.path, port: 0 });
  const port = broker.address!.port;
  client = await connect({ brokers: `127.0.0.1:${port}` });
  await client.admin.createTopic({ name: 'orders', partitions: 1 });
  return port;
}

describe('producer delivery timeout', () => {
  it('refuses a delivery timeout or a retry count that is not a number ≥ 0', async () => {
    await startWithTopic();
    for (const options of [
      { deliveryTimeoutMs: Number.NaN },
      { deliveryTimeoutMs: -1 },
      { deliveryTimeoutMs: Number.POSITIVE_INFINITY },
      { retries: -1 },
      { retries: Number.NaN },
    ])
      expect(() => client!.producer(options)).toThrow(
        expect.objectContaining({ codeName: 'INVALID_CONFIG' }),
      );
    expect(() => client!.producer({ retries: Number.POSITIVE_INFINITY, deliveryTimeoutMs: 0 })).not.toThrow();
  });

  it('rides out a broker restart with the default options', async () => {
    const port = await startWithTopic();
    const producer = client!.producer();
    expect((await producer.send({ topic: 'orders', value: 'before' })).offset).toBe(0n);

    await broker!.stop();
    const during = producer.send({ topic: 'orders', value: 'during' });
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    broker = await Broker.start({ dataDir: scratch.path, port });

    expect((await during).offset).toBe(1n);
    const consumer = client!.consumer({ topics: ['orders'], from: 'earliest' });
    const values: string[] = [];
    for await (const message of consumer) {
      values.push(message.value!.toString());
      if (values.length === 2) break;
    }
    await consumer.close();
    expect(values).toEqual(['before', 'during']);
  });

  it('waits through a broker restart for the metadata and the producer id of a first send', async () => {
    const port = await startWithTopic();
    await broker!.stop();
    // A new producer, and a topic this client has not sent to: the send needs the partition count
    // and a producer id before its message goes into a batch, and no broker answers for 1 s.
    const producer = client!.producer();
    const started = performance.now();
    const first = producer.send({ topic: 'orders', value: 'first' });
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    broker = await Broker.start({ dataDir: scratch.path, port });
    expect((await first).offset).toBe(0n);
    expect(performance.now() - started).toBeGreaterThanOrEqual(1_000);
  });

  it('fails a first send with the retriable error once the delivery timeout has passed without a broker', async () => {
    await startWithTopic();
    await broker!.stop();
    broker = null;
    const producer = client!.producer({ deliveryTimeoutMs: 400 });
    const started = performance.now();
    const error = await producer.send({ topic: 'orders', value: 'never' }).then(
      () => null,
      (failure: unknown) => failure,
    );
    const elapsed = performance.now() - started;
    expect(error).toBeInstanceOf(MemoryStreamerError);
    expect((error as MemoryStreamerError).retriable).toBe(true);
    // Tried for the delivery timeout, not given up at the first refused connection.
    expect(elapsed).toBeGreaterThanOrEqual(350);
    expect(elapsed).toBeLessThan(5_000);
  });

  it('fails the send with its last retriable error once the delivery timeout has passed', async () => {
    await startWithTopic();
    const producer = client!.producer({ deliveryTimeoutMs: 400 });
    await producer.send({ topic: 'orders', value: 'before' });
    await broker!.stop();
    broker = null;

    const started = performance.now();
    const error = await producer.send({ topic: 'orders', value: 'lost' }).then(
      () => null,
      (failure: unknown) => failure,
    );
    const took = performance.now() - started;
    expect(error).toBeInstanceOf(MemoryStreamerError);
    expect((error as MemoryStreamerError).retriable).toBe(true);
    expect(took).toBeGreaterThanOrEqual(400);
    expect(took).toBeLessThan(5_000);
  });
});
