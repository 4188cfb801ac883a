// NOT_COORDINATOR reaches a group member when its group's coordinator moved to another broker and
// the cluster transport's one re-route did not find the new one yet. The member treats it as a
// lost membership: it joins again and reads on from the committed offsets, and a commit refused so
// says why. A real broker answers everything else; only the coordinator's move is played here, by
// a transport that answers one chosen request with NOT_COORDINATOR.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Consumer } from '../../../src/client/consumer.js';
import { TcpTransport } from '../../../src/client/tcp-transport.js';
import type { ClientCommand, Transport } from '../../../src/client/transport.js';
import { Broker } from '../../../src/embedded/broker.js';
import { errorOf } from '../../../src/protocol/error-codes.js';
import { useTempDir } from '../../harness/temp-dir.js';
import { until } from '../../harness/until.js';

const scratch = useTempDir('ms-not-coordinator-');
let broker: Broker;
let transport: TcpTransport;
beforeEach(async () => {
  broker = await Broker.start({ dataDir: scratch.path, port: 0 });
  transport = new TcpTransport({ brokers: [{ host: '127.0.0.1', port: broker.address!.port }] });
});
afterEach(async () => {
  await transport.close();
  await broker.stop();
});

/** The broker's transport, except that the next request of `movedOn` is answered NOT_COORDINATOR. */
function coordinatorMoves(inner: Transport): { transport: Transport; move(on: ClientCommand): void } {
  let movedOn: ClientCommand | null = null;
  return {
    move: (on) => {
      movedOn = on;
    },
    transport: {
      request: (name, request, options) => {
        if (name === movedOn) {
          movedOn = null;
          return Promise.reject(errorOf('NOT_COORDINATOR', `group moved (answering ${name})`));
        }
        return inner.request(name, request, options);
      },
      subscribe: (request, handlers, options) => inner.subscribe(request, handlers, options),
      close: () => inner.close(),
    },
  };
}

async function setUp(): Promise<{ consumer: Consumer; move(on: ClientCommand): void }> {
  const client = broker.connect();
  await client.admin.createTopic({ name: 'jobs', partitions: 1 });
  await client.producer().sendMany(Array.from({ length: 30 }, (_, i) => ({ topic: 'jobs', value: `j${i}` })));
  await client.close();
  const moving = coordinatorMoves(transport);
  const consumer = new Consumer(moving.transport, {
    topics: ['jobs'],
    group: 'workers',
    sessionTimeoutMs: 1000,
    autoCommit: false,
  });
  for (let i = 0; i < 10; i++) await consumer.next();
  await consumer.commit();
  for (let i = 0; i < 5; i++) await consumer.next();
  return { consumer, move: moving.move };
}

async function generation(): Promise<number> {
  const client = broker.connect();
  try {
    return (await client.admin.describeGroup('workers')).group.generation;
  } finally {
    await client.close();
  }
}

describe('a group member told NOT_COORDINATOR', () => {
  it('on a heartbeat joins again by itself and reads on from the committed offset', async () => {
    const { consumer, move } = await setUp();
    const before = await generation();
    move('heartbeat');
    await until(async () => ((await generation()) > before ? true : null), 20_000);
    const next = await consumer.next();
    expect(next).toMatchObject({ partition: 0, offset: 10n });
    await consumer.close();
  }, 30_000);

  it('on a commit says the offsets were not committed and why, then reads on from the committed offset', async () => {
    const { consumer, move } = await setUp();
    move('commitOffsets');
    const refused = await consumer.commit().then(
      () => null,
      (error: unknown) => error,
    );
    expect(refused).toMatchObject({ codeName: 'NOT_COORDINATOR' });
    expect((refused as Error).message).toMatch(/offsets of group workers not committed/);
    const next = await consumer.next();
    expect(next).toMatchObject({ partition: 0, offset: 10n });
    await consumer.close();
  }, 30_000);
});
