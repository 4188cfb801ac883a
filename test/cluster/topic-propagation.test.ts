// A topic created through one broker can be written at once through another whose metadata has
// not caught up yet: that broker looks the topic up in etcd and answers LEADER_NOT_AVAILABLE
// (which the client retries) rather than UNKNOWN_TOPIC (which it takes as final). A topic etcd
// does not hold stays UNKNOWN_TOPIC, and one it cannot ask etcd about (etcd unreachable, or every
// lookup slot taken) is CONTROL_PLANE_UNAVAILABLE (retriable: the topic may exist). Two brokers in
// process on a real etcd; broker 2 reaches etcd through a proxy that holds etcd's answers back, so
// its watch lags broker 1's by 1.5 s.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '../../src/client/client.js';
import { connect } from '../../src/client/connect.js';
import { encodeRecordBatch } from '../../src/protocol/record-batch.js';
import { type NodeCluster, startNodeCluster } from '../harness/cluster.js';
import { type DelayProxy, startDelayProxy } from '../harness/delay-proxy.js';
import { errorCodeOf } from '../harness/error-code.js';
import { etcdAvailable } from '../harness/etcd.js';
import { until } from '../harness/until.js';

/** Long enough that broker 2 cannot have seen the topic when the test writes to it, even on a loaded machine. */
const LAG_MS = 1_500;

describe.skipIf(!etcdAvailable())('a topic on a broker whose metadata lags', () => {
  let cluster: NodeCluster;
  let proxy: DelayProxy | null = null;
  let client: Client;

  beforeAll(async () => {
    cluster = await startNodeCluster({
      brokers: 2,
      name: 'lag',
      // Broker 2's lease keep-alives come back LAG_MS late too: a lease far longer than that.
      leaseTtlSeconds: 6,
      etcdEndpointFor: async (id, etcd) => {
        if (id !== 2) return etcd.endpoint;
        const url = new URL(etcd.endpoint);
        proxy = await startDelayProxy({ host: url.hostname, port: Number(url.port) });
        return `http://${proxy.address}`;
      },
    });
    // Broker 1 started first and is the controller; broker 2 registered: from now on what etcd
    // tells broker 2 arrives late.
    await until(() => cluster.nodes[1]!.core.clusterMetadata?.metadata({}).brokers.length === 2, {
      what: 'broker 2 sees both brokers',
    });
    proxy!.setDelay(LAG_MS);
    client = await connect({ brokers: cluster.address(1) });
  }, 60_000);

  afterAll(async () => {
    await client?.close();
    await cluster?.stop();
    await proxy?.close();
  });

  it('takes writes through the lagging broker as soon as the topic exists', async () => {
    await client.admin.createTopic({ name: 'fresh', partitions: 4, replicationFactor: 1 });
    const leaders = await until(async () => {
      const topic = (await client.admin.metadata(['fresh'])).topics[0]!;
      const found = topic.partitions.map((partition) => partition.leader);
      return found.every((leader) => leader > 0) ? found : null;
    });
    // Both brokers lead some of the partitions, and broker 2 has not heard of the topic yet.
    expect(new Set(leaders)).toEqual(new Set([1, 2]));
    const lagging = cluster.nodes[1]!.core.clusterMetadata!;
    expect(lagging.metadata({ topics: ['fresh'] }).topics[0]!.error).toBe('UNKNOWN_TOPIC');
    const direct = await errorCodeOf(
      cluster.nodes[1]!.core.execute('produce', {
        topic: 'fresh',
        partition: leaders.indexOf(2),
        acks: 1,
        batch: encodeRecordBatch([{ value: 'direct' }]),
      }),
    );
    expect(direct).toBe('LEADER_NOT_AVAILABLE');

    const producer = client.producer({ acks: 1 });
    const receipts = await Promise.all(
      leaders.map((_, partition) => producer.send({ topic: 'fresh', partition, value: `p${partition}` })),
    );
    expect(receipts.map((receipt) => [receipt.partition, receipt.offset])).toEqual(
      leaders.map((_, partition) => [partition, 0n]),
    );
  }, 30_000);

  it('answers UNKNOWN_TOPIC for a topic etcd does not hold', async () => {
    const lagging = cluster.nodes[1]!.core;
    const batch = encodeRecordBatch([{ value: 'x' }]);
    expect(
      await errorCodeOf(lagging.execute('produce', { topic: 'never-made', partition: 0, acks: 1, batch })),
    ).toBe('UNKNOWN_TOPIC');
    expect(
      await errorCodeOf(
        lagging.execute('fetch', {
          topic: 'never-made',
          partition: 0,
          offset: 0n,
          maxBytes: 1024,
          maxWaitMs: 0,
        }),
      ),
    ).toBe('UNKNOWN_TOPIC');
    expect(
      await errorCodeOf(
        lagging.execute('listOffsets', { topic: 'never-made', partition: 0, spec: 'latest' }),
      ),
    ).toBe('UNKNOWN_TOPIC');
    // A name no topic can have is answered without asking etcd.
    expect(
      await errorCodeOf(lagging.execute('produce', { topic: '../etc', partition: 0, acks: 1, batch })),
    ).toBe('UNKNOWN_TOPIC');
  }, 30_000);

  it('answers CONTROL_PLANE_UNAVAILABLE, not UNKNOWN_TOPIC, for names past the lookup slots', async () => {
    // etcd answers broker 2 LAG_MS late: eight lookups hold every slot that long, and what comes
    // meanwhile cannot be checked, so it must not be told final news.
    const lagging = cluster.nodes[1]!.core;
    const batch = encodeRecordBatch([{ value: 'x' }]);
    const codes = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        errorCodeOf(lagging.execute('produce', { topic: `slot-${i}`, partition: 0, acks: 1, batch })),
      ),
    );
    expect(codes.slice(0, 8)).toEqual(new Array(8).fill('UNKNOWN_TOPIC'));
    expect(codes.slice(8)).toEqual(new Array(4).fill('CONTROL_PLANE_UNAVAILABLE'));
    // With the slots free again the same names are checked and are unknown.
    expect(
      await errorCodeOf(lagging.execute('produce', { topic: 'slot-11', partition: 0, acks: 1, batch })),
    ).toBe('UNKNOWN_TOPIC');
  }, 30_000);

  // Last: broker 2 loses etcd for good.
  it('answers the retriable CONTROL_PLANE_UNAVAILABLE when it cannot ask etcd', async () => {
    await proxy!.close();
    const lagging = cluster.nodes[1]!.core;
    const batch = encodeRecordBatch([{ value: 'x' }]);
    expect(
      await errorCodeOf(lagging.execute('produce', { topic: 'unknowable', partition: 0, acks: 1, batch })),
    ).toBe('CONTROL_PLANE_UNAVAILABLE');
  }, 30_000);
});
