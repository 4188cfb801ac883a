import { describe, expect, it } from 'vitest';
import { BrokerMetrics } from '../../src/metrics/broker-metrics.js';
import {
  REPLICATION_METRIC_NAMES,
  type ReplicationStateSource,
} from '../../src/metrics/replication-metrics.js';

/** A cluster member's state as plain values; `controller` and the counts change between scrapes. */
function memberState(): ReplicationStateSource & { controller: boolean; shrinks: number } {
  return {
    clusterId: 'c-1',
    controller: false,
    shrinks: 0,
    ledPartitions: () => [
      { topic: 'a', partition: 0, replicas: [1, 2, 3], isr: [1, 2, 3] },
      { topic: 'a', partition: 1, replicas: [1, 2, 3], isr: [1] },
      { topic: 'b', partition: 0, replicas: [1], isr: [1] },
    ],
    followerLag: () => [
      { topic: 'a', partition: 1, follower: 2, messages: 40n, seconds: 12.5 },
      { topic: 'a', partition: 1, follower: 3, messages: 0n, seconds: 0 },
    ],
    isController() {
      return this.controller;
    },
    controllerEpoch: () => 77n,
    offlinePartitions: () => 4,
    counts() {
      return { isrShrinks: this.shrinks, isrExpands: 2, leaderElections: 9, uncleanLeaderElections: 1 };
    },
  };
}

const line = (text: string, series: string) => text.split('\n').find((l) => l.startsWith(`${series} `));

describe('replication metrics', () => {
  it('registers every named series, and none before the broker joins a cluster', async () => {
    const metrics = new BrokerMetrics();
    const before = await metrics.text();
    for (const name of REPLICATION_METRIC_NAMES) expect(before).not.toContain(name);
    metrics.attachReplication(memberState());
    const after = await metrics.text();
    for (const name of REPLICATION_METRIC_NAMES) expect(after).toMatch(new RegExp(`^# TYPE ${name} `, 'm'));
  });

  it('reports the member state at each scrape', async () => {
    const metrics = new BrokerMetrics();
    const state = memberState();
    metrics.attachReplication(state);
    let text = await metrics.text();
    expect(line(text, 'memorystreamer_replication_led_partitions')).toMatch(/ 3$/);
    expect(line(text, 'memorystreamer_replication_under_replicated_partitions')).toMatch(/ 1$/);
    // Offline partitions are the controller's to report.
    expect(line(text, 'memorystreamer_replication_offline_partitions')).toMatch(/ 0$/);
    expect(line(text, 'memorystreamer_controller_active{cluster_id="c-1"}')).toMatch(/ 0$/);
    expect(line(text, 'memorystreamer_controller_epoch')).toMatch(/ 77$/);
    expect(
      line(text, 'memorystreamer_replication_follower_lag_messages{topic="a",partition="1",follower="2"}'),
    ).toMatch(/ 40$/);
    expect(
      line(text, 'memorystreamer_replication_follower_lag_seconds{topic="a",partition="1",follower="2"}'),
    ).toMatch(/ 12.5$/);
    expect(line(text, 'memorystreamer_replication_isr_shrinks_total')).toMatch(/ 0$/);
    state.controller = true;
    state.shrinks = 3;
    text = await metrics.text();
    expect(line(text, 'memorystreamer_replication_offline_partitions')).toMatch(/ 4$/);
    expect(line(text, 'memorystreamer_controller_active{cluster_id="c-1"}')).toMatch(/ 1$/);
    expect(line(text, 'memorystreamer_replication_isr_shrinks_total')).toMatch(/ 3$/);
    expect(line(text, 'memorystreamer_replication_isr_expands_total')).toMatch(/ 2$/);
    expect(line(text, 'memorystreamer_controller_leader_elections_total')).toMatch(/ 9$/);
    expect(line(text, 'memorystreamer_controller_unclean_leader_elections_total')).toMatch(/ 1$/);
  });
});
