// close() of the cluster transport: a request or subscription routed after it fails with
// CONNECTION_CLOSED and opens no connection. The transport to a partition's leader is made on
// demand; made after close(), nothing would ever close it (its socket would keep the process
// alive). One broker on a real etcd, in this process: its open connections are counted.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterTransport } from '../../src/client/cluster-transport.js';
import { parseBrokerAddress } from '../../src/client/tcp-transport.js';
import { encodeRecordBatch } from '../../src/protocol/record-batch.js';
import { type NodeCluster, startNodeCluster } from '../harness/cluster.js';
import { errorCodeOf } from '../harness/error-code.js';
import { etcdAvailable } from '../harness/etcd.js';
import { until } from '../harness/until.js';

/** Long enough for a connection opened after close() to reach the broker and be counted. */
const SETTLE_MS = 500;

function produce(transport: ClusterTransport): Promise<unknown> {
  return transport.request(
    'produce',
    { topic: 'routed', partition: 0, acks: 1, batch: encodeRecordBatch([{ value: 'x' }]) },
    { timeoutMs: 2000 },
  );
}

function subscribe(transport: ClusterTransport): Promise<unknown> {
  return transport.subscribe(
    { topic: 'routed', partition: 0, offset: -2n, credit: 1 << 20 },
    { onBatches: () => undefined, onError: () => undefined },
    { timeoutMs: 2000 },
  );
}

describe.skipIf(!etcdAvailable())('closing a cluster transport', () => {
  let cluster: NodeCluster;
  beforeAll(async () => {
    cluster = await startNodeCluster({ brokers: 1, name: 'close' });
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it('routes nothing after close: no connection to a partition leader is opened again', async () => {
    const node = cluster.nodes[0]!;
    const transport = await ClusterTransport.connect({ brokers: [parseBrokerAddress(cluster.address(1))] });
    try {
      expect(transport.routed).toBe(true);
      await until(
        async () =>
          (await errorCodeOf(transport.request('createTopic', { name: 'routed' }, { timeoutMs: 5000 }))) ===
          null,
        { what: 'the topic created' },
      );
      // Once the metadata names the leader, produce goes to it over a connection of its own.
      await until(
        async () => {
          await transport.refresh();
          return (await errorCodeOf(produce(transport))) === null;
        },
        { what: 'a produce routed to the leader' },
      );
      expect(node.server!.connectionCount).toBe(2);
    } finally {
      await transport.close();
    }
    await until(() => node.server!.connectionCount === 0, { what: 'connections closed', timeoutMs: 2000 });

    expect(await errorCodeOf(produce(transport))).toBe('CONNECTION_CLOSED');
    expect(await errorCodeOf(subscribe(transport))).toBe('CONNECTION_CLOSED');
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    expect(node.server!.connectionCount).toBe(0);
  }, 60_000);
});
