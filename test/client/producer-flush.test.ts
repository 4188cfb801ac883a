// When the producer sends a batch with lingerMs 0: a message sent alone to an idle partition leaves
// at the end of the current job (a microtask), before the next event-loop turn, where it used to
// wait for a setImmediate (at most 8 times per partition and turn); sends of one synchronous job
// still share one batch, and a loop that sends from `for await` still coalesces instead of making
// one request per message.
// A real embedded broker, in process; a transport around the in-process one records the order of
// produce requests against setImmediate callbacks (no timing).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '../../src/client/client.js';
import type { ClientCommand, RequestOptions, Transport } from '../../src/client/transport.js';
import { Broker } from '../../src/embedded/broker.js';
import { InProcessTransport } from '../../src/embedded/in-process-transport.js';
import type { RequestOf, ResponseOf } from '../../src/protocol/commands/registry.js';
import { useTempDir } from '../harness/temp-dir.js';

const scratch = useTempDir('ms-producer-flush-', 'all');
let broker: Broker;

/**
 * The in-process transport, noting each produce request in `events`; while `hold` is set, produce
 * answers wait until `release()` (a batch stays in flight as long as a test needs).
 */
class RecordingTransport extends InProcessTransport {
  readonly events: string[] = [];
  produceRequests = 0;
  hold = false;
  private held: Array<() => void> = [];

  override request<K extends ClientCommand>(
    name: K,
    request: RequestOf<K>,
    options: RequestOptions,
  ): Promise<ResponseOf<K>> {
    if (name !== 'produce') return super.request(name, request, options);
    this.produceRequests++;
    this.events.push('produce');
    const answer = super.request(name, request, options);
    if (!this.hold) return answer;
    return new Promise<void>((resolve) => this.held.push(resolve)).then(() => answer);
  }

  release(): void {
    this.hold = false;
    for (const resolve of this.held.splice(0)) resolve();
  }
}

function recordingClient(): { client: Client; transport: RecordingTransport } {
  const transport = new RecordingTransport(broker.core);
  return { client: new Client(transport as Transport), transport };
}

beforeAll(async () => {
  broker = await Broker.start({ dataDir: scratch.path });
  const admin = broker.connect();
  await admin.admin.createTopic({ name: 'flush-disk', partitions: 1 });
  await admin.admin.createTopic({ name: 'flush-memory', partitions: 1, storage: 'memory' });
  await admin.close();
});
afterAll(async () => {
  await broker.stop();
});

describe('producer with lingerMs 0: a lone message', () => {
  for (const topic of ['flush-disk', 'flush-memory']) {
    it(`is sent before a setImmediate queued ahead of it runs (${topic})`, async () => {
      const { client, transport } = recordingClient();
      const producer = client.producer({ lingerMs: 0 });
      // The first send learns the partition count and the producer id (awaits); later ones do not.
      await producer.send({ topic, value: 'warm-up' });
      for (let round = 0; round < 3; round++) {
        transport.events.length = 0;
        const turn = new Promise<void>((resolve) =>
          setImmediate(() => {
            transport.events.push('setImmediate');
            resolve();
          }),
        );
        const receipt = producer.send({ topic, value: `alone ${round}` });
        await Promise.all([turn, receipt]);
        expect(transport.events).toEqual(['produce', 'setImmediate']);
      }
      await client.close();
    });
  }

  it('waits for the next turn while a batch of its partition is in flight (it may have company)', async () => {
    const { client, transport } = recordingClient();
    const producer = client.producer({ lingerMs: 0 });
    await producer.send({ topic: 'flush-disk', value: 'warm-up' });
    await new Promise((resolve) => setImmediate(resolve));
    transport.events.length = 0;
    transport.hold = true;
    const first = producer.send({ topic: 'flush-disk', value: 'first' });
    await Promise.resolve();
    expect(transport.events).toEqual(['produce']);
    const turn = new Promise<void>((resolve) =>
      setImmediate(() => {
        transport.events.push('setImmediate');
        resolve();
      }),
    );
    const second = producer.send({ topic: 'flush-disk', value: 'second' });
    await turn;
    await new Promise((resolve) => setImmediate(resolve));
    transport.release();
    await Promise.all([first, second]);
    expect(transport.events).toEqual(['produce', 'setImmediate', 'produce']);
    await client.close();
  });
});

describe('producer with lingerMs 0: sends still coalesce', () => {
  it('into one produce request for every send of one synchronous loop', async () => {
    const { client, transport } = recordingClient();
    const producer = client.producer({ lingerMs: 0 });
    await producer.send({ topic: 'flush-memory', value: 'warm-up' });
    const before = transport.produceRequests;
    const receipts = [];
    for (let i = 0; i < 500; i++) receipts.push(producer.send({ topic: 'flush-memory', value: `m${i}` }));
    const offsets = (await Promise.all(receipts)).map((receipt) => receipt.offset);
    expect(transport.produceRequests - before).toBe(1);
    // One batch: consecutive offsets.
    expect(offsets[499]! - offsets[0]!).toBe(499n);
    await client.close();
  });

  it('into a few produce requests per turn for sends from a `for await` loop, not one per message', async () => {
    const { client, transport } = recordingClient();
    const producer = client.producer({ lingerMs: 0 });
    await producer.send({ topic: 'flush-memory', value: 'warm-up' });
    const count = 2_000;
    async function* source() {
      for (let i = 0; i < count; i++) yield i;
    }
    let turns = 0;
    let counting = true;
    const countTurns = () => {
      turns++;
      if (counting) setImmediate(countTurns);
    };
    setImmediate(countTurns);
    const before = transport.produceRequests;
    const receipts = [];
    for await (const i of source()) receipts.push(producer.send({ topic: 'flush-memory', value: `m${i}` }));
    await Promise.all(receipts);
    counting = false;
    const requests = transport.produceRequests - before;
    // At most 8 lone (microtask) flushes per partition and turn, plus the batches that filled up
    // or waited for the turn's end.
    expect(requests).toBeLessThanOrEqual(9 * (turns + 1));
    expect(requests).toBeLessThan(count / 10);
    await client.close();
  });
});
