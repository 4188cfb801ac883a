// The status page's cluster section, from a cluster member's metadata given as plain values:
// brokers (registered ones live, a replica's unregistered broker not), and each partition's state.
import { describe, expect, it } from 'vitest';
import { clusterStatus } from '../../../src/broker/admin/status-snapshot.js';
import type { ClusterMetadataView } from '../../../src/broker/replica-hooks.js';
import type { MetadataResponse } from '../../../src/protocol/commands/data-types.js';

function viewOf(metadata: MetadataResponse): ClusterMetadataView {
  return {
    metadata: () => metadata,
    topics: () => [],
    partitionRoles: () => undefined,
    partitionCount: () => undefined,
    missingTopic: async (topic) => new Error(`no ${topic}`),
  };
}

const partition = (partition: number, leader: number, replicas: number[], isr: number[]) => ({
  partition,
  error: null,
  leader,
  leaderEpoch: 3,
  replicas,
  isr,
  offlineReplicas: [],
});

describe('clusterStatus', () => {
  it('lists live and missing brokers, the controller, and healthy, under-replicated and offline partitions', () => {
    const status = clusterStatus(
      viewOf({
        clusterId: 'c-1',
        controllerId: 2,
        brokers: [
          { id: 2, host: '127.0.0.1', port: 7410 },
          { id: 1, host: '::1', port: 7400 },
        ],
        topics: [
          {
            name: 'orders',
            error: null,
            id: 'x',
            internal: false,
            partitions: [partition(1, -1, [3, 1], [3]), partition(0, 1, [1, 2, 3], [1, 2])],
          },
          {
            name: 'audit',
            error: null,
            id: 'y',
            internal: false,
            partitions: [partition(0, 2, [2, 1], [2, 1])],
          },
        ],
      }),
    );
    expect(status.clusterId).toBe('c-1');
    expect(status.brokers).toEqual([
      { id: 1, address: '[::1]:7400', live: true, controller: false },
      { id: 2, address: '127.0.0.1:7410', live: true, controller: true },
      { id: 3, address: null, live: false, controller: false },
    ]);
    expect(status.partitions.map((p) => [p.topic, p.partition, p.underReplicated, p.offline])).toEqual([
      ['audit', 0, false, false],
      ['orders', 0, true, false],
      ['orders', 1, true, true],
    ]);
    expect(status.underReplicated).toBe(2);
    expect(status.offline).toBe(1);
  });
});
