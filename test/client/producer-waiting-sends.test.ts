// Sends that cannot go into a batch at once (the producer id or the topic's partition count not
// known yet, or the buffer full) wait in call order, as one small object each: a burst made before
// the first answer keeps its order with sendMany calls among it, is failed together when the
// answer is final, is waited for by flush, and buffer space held by lingering batches is freed for
// it. A real embedded broker, in process; a transport around the in-process one holds the producer
// id's answer back and counts the metadata requests.

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '../../src/client/client.js';
import type { Receipt } from '../../src/client/producer.js';
import type { ClientCommand, RequestOptions, Transport } from '../../src/client/transport.js';
import { Broker } from '../../src/embedded/broker.js';
import { InProcessTransport } from '../../src/embedded/in-process-transport.js';
import type { RequestOf, ResponseOf } from '../../src/protocol/commands/registry.js';
import { errorCodeOf } from '../harness/error-code.js';
import { useTempDir } from '../harness/temp-dir.js';

const scratch = useTempDir('ms-producer-waiting-', 'all');
let broker: Broker;

/** The in-process transport; `initProducerId` answers wait for `release()`; requests are counted. */
class HoldingTransport extends InProcessTransport {
  readonly counts = new Map<string, number>();
  private held: Array<() => void> = [];
  private holding = true;

  override request<K extends ClientCommand>(
    name: K,
    request: RequestOf<K>,
    options: RequestOptions,
  ): Promise<ResponseOf<K>> {
    this.counts.set(name, (this.counts.get(name) ?? 0) + 1);
    const answer = super.request(name, request, options);
    if (name !== 'initProducerId' || !this.holding) return answer;
    return new Promise<void>((resolve) => this.held.push(resolve)).then(() => answer);
  }

  release(): void {
    this.holding = false;
    for (const resolve of this.held.splice(0)) resolve();
  }
}

function holdingClient(): { client: Client; transport: HoldingTransport } {
  const transport = new HoldingTransport(broker.core);
  return { client: new Client(transport as Transport), transport };
}

beforeAll(async () => {
  broker = await Broker.start({ dataDir: scratch.path });
  const admin = broker.connect();
  for (const name of ['order', 'unknown-mix', 'flushed', 'lingering', 'heap'])
    await admin.admin.createTopic({ name, partitions: 1, storage: 'memory' });
  await admin.close();
});

afterAll(async () => {
  await broker?.stop();
});

describe('sends waiting for their turn', () => {
  it('keep call order, sendMany calls among them, when made before the producer id is known', async () => {
    const { client, transport } = holdingClient();
    const producer = client.producer();
    const calls: Array<Promise<Receipt | Receipt[]>> = [];
    let n = 0;
    for (let i = 0; i < 300; i++) calls.push(producer.send({ topic: 'order', value: `m${n++}` }));
    calls.push(producer.sendMany(Array.from({ length: 200 }, () => ({ topic: 'order', value: `m${n++}` }))));
    for (let i = 0; i < 300; i++) calls.push(producer.send({ topic: 'order', value: `m${n++}` }));
    await new Promise((resolve) => setTimeout(resolve, 20));
    transport.release();
    const receipts = (await Promise.all(calls)).flat();
    expect(receipts.map((receipt) => receipt.offset)).toEqual(receipts.map((_, i) => BigInt(i)));
    // And the log holds them in that order.
    const consumer = client.consumer({ topics: ['order'], from: 'earliest' });
    const values: string[] = [];
    for await (const message of consumer) {
      values.push(message.value!.toString());
      if (values.length === n) break;
    }
    expect(values).toEqual(Array.from({ length: n }, (_, i) => `m${i}`));
    await client.close();
  });

  it('fail together with a final error, with one metadata request, and the calls behind them go on', async () => {
    const { client, transport } = holdingClient();
    const producer = client.producer();
    const missing = Array.from({ length: 500 }, (_, i) =>
      producer.send({ topic: 'no-such-topic', value: `x${i}` }),
    );
    const present = producer.send({ topic: 'unknown-mix', value: 'after' });
    transport.release();
    const codes = await Promise.all(missing.map((send) => errorCodeOf(send)));
    expect(new Set(codes)).toEqual(new Set(['UNKNOWN_TOPIC']));
    expect((await present).offset).toBe(0n);
    expect(transport.counts.get('describeTopic')).toBe(2);
    await client.close();
  });

  it('are waited for by flush', async () => {
    const { client, transport } = holdingClient();
    const producer = client.producer();
    let settled = 0;
    for (let i = 0; i < 1000; i++) void producer.send({ topic: 'flushed', value: 'v' }).then(() => settled++);
    setTimeout(() => transport.release(), 20);
    await producer.flush();
    expect(settled).toBe(1000);
    await client.close();
  });

  it('make batches lingering in a full buffer due instead of waiting out their linger', async () => {
    const { client, transport } = holdingClient();
    transport.release();
    // An hour of linger: without the waiting sends making them due, the batches would sit there.
    const producer = client.producer({ lingerMs: 3_600_000, maxBufferedBytes: 4096 });
    const sends = Array.from({ length: 400 }, (_, i) =>
      producer.send({ topic: 'lingering', value: Buffer.alloc(100, i) }),
    );
    // The buffer holds about 37 of them: the first 300 need it freed several times over.
    const first = await Promise.all(sends.slice(0, 300));
    expect(first.map((receipt) => receipt.offset)).toEqual(first.map((_, i) => BigInt(i)));
    // The last batch may linger as asked; flush sends it and waits for every send.
    await producer.flush();
    expect((await sends[399]!).offset).toBe(399n);
    await client.close();
  }, 20_000);

  it('cost a small object each while they wait', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const { client, transport } = holdingClient();
    const producer = client.producer();
    const input = { topic: 'heap', value: Buffer.alloc(10) };
    const count = 50_000;
    gc();
    const before = process.memoryUsage().heapUsed;
    const sends = Array.from({ length: count }, () => producer.send(input));
    gc();
    const perSend = (process.memoryUsage().heapUsed - before) / count;
    transport.release();
    await Promise.all(sends);
    // A waiting send holds its record, promise and resolve functions (about 250 bytes here); an
    // async function per send held five times that.
    expect(perSend).toBeLessThan(500);
    await client.close();
  });
});
