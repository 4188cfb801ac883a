// The cluster member as a part of a broker node: joins the cluster (cluster-member.ts), then runs
// this broker's replicas from the metadata (replica-manager.ts), re-checked at every metadata
// change. Stops in reverse: replicas first (leaders resign, fetchers stop), then the membership.

import type { NodePartStarter } from '../broker/broker-node.js';
import { ClusterMember, type ClusterMemberOptions } from './cluster-member.js';
import { ReplicaManager, type ReplicaManagerOptions } from './replication/replica-manager.js';

export type ClusterPartOptions = Omit<ClusterMemberOptions, 'events' | 'dataDir'> & {
  readonly replication?: ReplicaManagerOptions;
};

export function clusterPart(options: ClusterPartOptions): NodePartStarter {
  const start: NodePartStarter = async (core, logger) => {
    let manager: ReplicaManager | null = null;
    const member = await ClusterMember.join({
      ...options,
      dataDir: core.storageDir,
      onConnectRetry: (attempt, error, delayMs) =>
        logger.warn({ attempt, delayMs, reason: error.message }, 'etcd not reachable yet; retrying'),
      events: {
        onMetadata: () => manager?.reconcile(),
        onError: (error) => logger.warn({ reason: error.message }, 'cluster metadata'),
        onTerm: (term) => logger.info({ epoch: term.epoch.toString() }, 'this broker is the controller'),
      },
    });
    const [host, port] = [
      options.advertise.slice(0, options.advertise.lastIndexOf(':')),
      Number(options.advertise.slice(options.advertise.lastIndexOf(':') + 1)),
    ];
    core.advertisedListener = { host, port };
    manager = new ReplicaManager(core, member, logger, options.replication ?? {});
    manager.start();
    logger.info({ brokerId: member.brokerId, clusterId: member.clusterId }, 'joined the cluster');
    return {
      name: 'cluster member',
      stop: async () => {
        await manager?.stop();
        await member.leave();
      },
    };
  };
  // Group offsets live in the cluster's replicated `__consumer_offsets`, not a local one, and
  // partition logs keep their high watermark across restarts.
  return Object.assign(start, { coreOptions: { clusterMember: true } });
}
