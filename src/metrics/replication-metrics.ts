// Replication and controller metrics of a cluster member. Registered only when the broker joins a
// cluster (BrokerMetrics.attachReplication): a broker alone has no replicas, so it exports none of
// these series rather than zeros that read as "healthy cluster". Everything is read from the
// cluster layer when Prometheus scrapes; the counters are running totals kept there.

import { Counter, Gauge, type Registry } from 'prom-client';

/** One partition this broker leads. */
export interface LedPartition {
  readonly topic: string;
  readonly partition: number;
  readonly replicas: readonly number[];
  readonly isr: readonly number[];
}

/** How far one follower of a partition led here is behind its leader. */
export interface FollowerLag {
  readonly topic: string;
  readonly partition: number;
  readonly follower: number;
  /** Leader log end − the follower's last reported position (the whole log before its first fetch). */
  readonly messages: bigint;
  /** Since the follower last held the leader's whole log (0 while it does). */
  readonly seconds: number;
}

/** What a cluster member reports; every call is made at scrape time. */
export interface ReplicationStateSource {
  readonly clusterId: string;
  /** Partitions this broker leads, with their replicas and committed ISR. */
  ledPartitions(): readonly LedPartition[];
  followerLag(): readonly FollowerLag[];
  /** True while this broker holds the controller role. */
  isController(): boolean;
  /** The term (epoch) of the controller this broker knows of; null while none is elected. */
  controllerEpoch(): bigint | null;
  /** Partitions of the cluster without a leader (reported by the controller only). */
  offlinePartitions(): number;
  /** Running totals: ISR changes applied by leaders here, elections seen by the controller here. */
  counts(): {
    readonly isrShrinks: number;
    readonly isrExpands: number;
    readonly leaderElections: number;
    readonly uncleanLeaderElections: number;
  };
}

/** Names of every series registered here (docs and the deploy test list them). */
export const REPLICATION_METRIC_NAMES = [
  'memorystreamer_replication_led_partitions',
  'memorystreamer_replication_under_replicated_partitions',
  'memorystreamer_replication_offline_partitions',
  'memorystreamer_replication_isr_shrinks_total',
  'memorystreamer_replication_isr_expands_total',
  'memorystreamer_replication_follower_lag_messages',
  'memorystreamer_replication_follower_lag_seconds',
  'memorystreamer_controller_active',
  'memorystreamer_controller_epoch',
  'memorystreamer_controller_leader_elections_total',
  'memorystreamer_controller_unclean_leader_elections_total',
] as const;

/** A counter whose total lives elsewhere: set to that total at each scrape. */
function totalCounter(registry: Registry, name: string, help: string, read: () => number): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      const total = read();
      if (total > 0) this.inc(total);
    },
  });
}

export function registerReplicationMetrics(registry: Registry, source: ReplicationStateSource): void {
  const registers = [registry];
  new Gauge({
    name: 'memorystreamer_replication_led_partitions',
    help: 'partitions this broker leads',
    registers,
    collect() {
      this.set(source.ledPartitions().length);
    },
  });
  new Gauge({
    name: 'memorystreamer_replication_under_replicated_partitions',
    help: 'partitions led by this broker whose in-sync replica set is smaller than their replica set',
    registers,
    collect() {
      this.set(source.ledPartitions().filter((p) => p.isr.length < p.replicas.length).length);
    },
  });
  new Gauge({
    name: 'memorystreamer_replication_offline_partitions',
    help: 'partitions of the cluster without a leader (counted by the controller; 0 on other brokers)',
    registers,
    collect() {
      this.set(source.isController() ? source.offlinePartitions() : 0);
    },
  });
  totalCounter(
    registry,
    'memorystreamer_replication_isr_shrinks_total',
    'replicas removed from the in-sync replica set of partitions led by this broker',
    () => source.counts().isrShrinks,
  );
  totalCounter(
    registry,
    'memorystreamer_replication_isr_expands_total',
    'replicas added to the in-sync replica set of partitions led by this broker',
    () => source.counts().isrExpands,
  );
  new Gauge({
    name: 'memorystreamer_replication_follower_lag_messages',
    help: 'messages a follower is behind this leader (leader log end − follower position)',
    labelNames: ['topic', 'partition', 'follower'],
    registers,
    collect() {
      this.reset();
      for (const lag of source.followerLag())
        this.set(
          { topic: lag.topic, partition: String(lag.partition), follower: String(lag.follower) },
          Number(lag.messages),
        );
    },
  });
  new Gauge({
    name: 'memorystreamer_replication_follower_lag_seconds',
    help: 'seconds since a follower last held the whole log of this leader (0 while it does)',
    labelNames: ['topic', 'partition', 'follower'],
    registers,
    collect() {
      this.reset();
      for (const lag of source.followerLag())
        this.set(
          { topic: lag.topic, partition: String(lag.partition), follower: String(lag.follower) },
          lag.seconds,
        );
    },
  });
  new Gauge({
    name: 'memorystreamer_controller_active',
    help: '1 while this broker is the cluster controller, else 0',
    labelNames: ['cluster_id'],
    registers,
    collect() {
      this.reset();
      this.set({ cluster_id: source.clusterId }, source.isController() ? 1 : 0);
    },
  });
  new Gauge({
    name: 'memorystreamer_controller_epoch',
    help: 'term of the controller this broker knows of (grows with every new controller; 0 while none is elected)',
    registers,
    collect() {
      this.set(Number(source.controllerEpoch() ?? 0n));
    },
  });
  totalCounter(
    registry,
    'memorystreamer_controller_leader_elections_total',
    'partition leaders elected while this broker was the controller (clean and unclean)',
    () => source.counts().leaderElections,
  );
  totalCounter(
    registry,
    'memorystreamer_controller_unclean_leader_elections_total',
    'leaders elected from outside the in-sync replica set while this broker was the controller (acknowledged messages may be lost)',
    () => source.counts().uncleanLeaderElections,
  );
}
