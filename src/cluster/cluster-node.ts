// The cluster member as a part of a broker node: joins the cluster (cluster-member.ts), then runs
// this broker's replicas from the metadata (replica-manager.ts), re-checked at every metadata
// change, and exports the replication and controller metrics. Stops in reverse: before the node
// stops serving, a controlled shutdown moves leadership to other in-sync replicas (clients are
// answered NOT_LEADER and move on, instead of losing their connections to a leader); then the
// replicas stop (leaders resign, fetchers stop), then the membership.

import type { NodePartStarter } from '../broker/broker-node.js';
import { registerAntiEntropyMetrics } from '../metrics/anti-entropy-metrics.js';
import type { ReplicationStateSource } from '../metrics/replication-metrics.js';
import { ClusterMember, type ClusterMemberOptions } from './cluster-member.js';
import { NO_LEADER } from './control-plane/metadata-records.js';
import { LeaderElectionCounter } from './leader-election-counter.js';
import { interBrokerTls } from './replication/inter-broker-tls.js';
import { ReplicaManager, type ReplicaManagerOptions } from './replication/replica-manager.js';

/** A controlled shutdown waits this long at most for leadership to move away. */
const CONTROLLED_SHUTDOWN_TIMEOUT_MS = 5_000;

export type ClusterPartOptions = Omit<ClusterMemberOptions, 'events' | 'dataDir'> & {
  readonly replication?: ReplicaManagerOptions;
};

/** What the metrics read from this member and its replicas at each scrape. */
function replicationSource(
  member: ClusterMember,
  manager: ReplicaManager,
  elections: LeaderElectionCounter,
): ReplicationStateSource {
  return {
    clusterId: member.clusterId,
    ledPartitions: () => manager.replicationStats().partitions,
    followerLag: () =>
      manager.replicationStats().partitions.flatMap((p) =>
        p.followers.map((f) => ({
          topic: p.topic,
          partition: p.partition,
          follower: f.brokerId,
          messages: f.lagMessages,
          seconds: f.lagMs / 1000,
        })),
      ),
    isController: () => member.isController,
    controllerEpoch: () => member.metadata.controller?.epoch ?? null,
    offlinePartitions: () => {
      const cache = member.metadata;
      let offline = 0;
      for (const { value: topic } of cache.topics())
        for (let p = 0; p < topic.partitions; p++)
          if (cache.partition(topic.name, p)?.value.leader === NO_LEADER) offline++;
      return offline;
    },
    counts: () => {
      const stats = manager.replicationStats();
      return {
        isrShrinks: stats.isrShrinks,
        isrExpands: stats.isrExpands,
        leaderElections: elections.elections,
        uncleanLeaderElections: elections.uncleanElections,
      };
    },
  };
}

export function clusterPart(options: ClusterPartOptions): NodePartStarter {
  const start: NodePartStarter = async (core, logger, node) => {
    let manager: ReplicaManager | null = null;
    let member: ClusterMember | null = null;
    const elections = new LeaderElectionCounter();
    member = await ClusterMember.join({
      ...options,
      dataDir: core.storageDir,
      // Heartbeats go to the controller like replica fetches go to leaders: over TLS when the brokers use it.
      heartbeatTls: interBrokerTls(node),
      onConnectRetry: (attempt, error, delayMs) =>
        logger.warn({ attempt, delayMs, reason: error.message }, 'etcd not reachable yet; retrying'),
      events: {
        onMetadata: (cache, events) => {
          elections.observe(cache, events, member?.isController ?? false);
          manager?.reconcile();
        },
        onReconcile: (result) => {
          if (result.uncleanElections > 0) {
            elections.addUnclean(result.uncleanElections);
            logger.warn({ count: result.uncleanElections }, 'unclean leader election');
          }
        },
        onError: (error) => logger.warn({ reason: error.message }, 'cluster metadata'),
        onTerm: (term) => logger.info({ epoch: term.epoch.toString() }, 'this broker is the controller'),
        onFencing: (brokerIds, fenced) =>
          logger.warn(
            { brokers: brokerIds },
            fenced ? 'brokers fenced: no heartbeat for the fencing time' : 'fenced broker heard again',
          ),
      },
      onLeaseLost: (error) =>
        logger.warn(
          { reason: error.message },
          'etcd lease lost: this broker left the cluster and registers again',
        ),
      onRejoinRetry: (attempt, error, delayMs) =>
        logger.warn({ attempt, delayMs, reason: error.message }, 'registering again failed; retrying'),
      onRejoined: (attempts, tookMs) =>
        logger.info({ attempts, tookMs }, 'registered again under a new lease: back in the cluster'),
      onSelfFence: (state, silentForMs) => {
        if (state === 'fenced')
          logger.warn({ silentForMs }, 'no heartbeat answered by the controller: this broker stops leading');
        else logger.info({ silentForMs }, 'heartbeats answered again: this broker may lead');
        // Its groups are dropped while it is fenced, and coordinated again once it is heard.
        manager?.selfFenceChanged(state);
      },
    });
    const [host, port] = [
      options.advertise.slice(0, options.advertise.lastIndexOf(':')),
      Number(options.advertise.slice(options.advertise.lastIndexOf(':') + 1)),
    ];
    core.advertisedListener = { host, port };
    manager = new ReplicaManager(core, member, logger, { ...options.replication, tls: interBrokerTls(node) });
    manager.start();
    core.metrics.attachReplication(replicationSource(member, manager, elections));
    const antiEntropy = manager.antiEntropy;
    registerAntiEntropyMetrics(core.metrics.registry, () => antiEntropy.totals);
    logger.info({ brokerId: member.brokerId, clusterId: member.clusterId }, 'joined the cluster');
    const joined = member;
    return {
      name: 'cluster member',
      beforeStop: async () => {
        const startedMs = Date.now();
        manager?.beginShutdown();
        const remaining = await joined.controlledShutdown(CONTROLLED_SHUTDOWN_TIMEOUT_MS);
        logger.info(
          { tookMs: Date.now() - startedMs, stillLed: remaining.length },
          'controlled shutdown: leadership moved away',
        );
      },
      stop: async () => {
        await manager?.stop();
        await joined.leave();
      },
    };
  };
  // Group offsets live in the cluster's replicated `__consumer_offsets`, not a local one, and
  // partition logs keep their high watermark across restarts.
  return Object.assign(start, { coreOptions: { clusterMember: true } });
}
