// A broker's membership of a cluster, from start to stop, in the order that leaves nothing
// half-done:
//
//   1. read the data directory's identity (cluster.json) and refuse a mismatched broker id before
//      anything touches etcd;
//   2. connect to etcd, retrying with backoff up to a deadline (nothing is written meanwhile);
//   3. agree on the cluster id (the stored one, or ours for the cluster's first broker) and refuse
//      a data directory of another cluster;
//   4. register under a lease (BROKER_ID_IN_USE while another live broker holds the id);
//   5. record the identity in the data directory (first start only), so a directory is only ever
//      claimed by a broker that did join;
//   6. run the controller service: the metadata cache, and the controller role when elected.
//
// A failure at any step undoes the steps before it (registration revoked, etcd closed), so a
// broker that cannot join leaves no trace in the cluster. Stopping runs the steps backwards.

import { randomUUID } from 'node:crypto';
import { errorOf } from '../protocol/error-codes.js';
import { claimIdentity, readIdentity } from './broker-identity.js';
import { parseClusterUrl } from './control-plane/cluster-url.js';
import { type BrokerSession, ControlPlane } from './control-plane/control-plane.js';
import type { MetadataCache } from './control-plane/metadata-cache.js';
import { ControllerService, type ControllerServiceEvents } from './controller/controller-service.js';

export interface ClusterMemberOptions {
  /** `etcd://host:port[,host:port…][/name]`. */
  readonly cluster: string;
  readonly brokerId: number;
  /** host:port that clients and other brokers use to reach this broker. */
  readonly advertise: string;
  readonly dataDir: string;
  /** The membership lease: a broker silent this long leaves the live set (etcd's floor is ~1 s). */
  readonly leaseTtlSeconds?: number;
  /** How long joining keeps retrying an unreachable etcd before it fails. */
  readonly connectTimeoutMs?: number;
  /** Each failed attempt to reach etcd while joining (for the broker's log). */
  readonly onConnectRetry?: (attempt: number, error: Error, delayMs: number) => void;
  readonly events?: ControllerServiceEvents;
}

export const DEFAULT_LEASE_TTL_SECONDS = 3;
const ADVERTISE = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

/** Checks what can be checked without etcd: broker id and advertised address. */
export function validateMemberOptions(options: Pick<ClusterMemberOptions, 'brokerId' | 'advertise'>): void {
  if (!Number.isSafeInteger(options.brokerId) || options.brokerId < 0 || options.brokerId > 0x7fffffff)
    throw errorOf('INVALID_CONFIG', `broker id ${options.brokerId}: expected an integer 0..2147483647`);
  const match = ADVERTISE.exec(options.advertise);
  const port = match === null ? 0 : Number(match[2]);
  if (match === null || port < 1 || port > 65535)
    throw errorOf(
      'INVALID_CONFIG',
      `advertise "${options.advertise}": expected host:port that other brokers and clients can reach`,
    );
}

export class ClusterMember {
  readonly brokerId: number;
  readonly clusterId: string;
  readonly advertise: string;
  private readonly plane: ControlPlane;
  private readonly session: BrokerSession;
  private readonly service: ControllerService;
  private stopped = false;

  private constructor(
    options: ClusterMemberOptions,
    clusterId: string,
    plane: ControlPlane,
    session: BrokerSession,
    service: ControllerService,
  ) {
    this.brokerId = options.brokerId;
    this.advertise = options.advertise;
    this.clusterId = clusterId;
    this.plane = plane;
    this.session = session;
    this.service = service;
  }

  static async join(options: ClusterMemberOptions): Promise<ClusterMember> {
    validateMemberOptions(options);
    const address = parseClusterUrl(options.cluster);
    const existing = await readIdentity(options.dataDir);
    if (existing !== null && existing.brokerId !== options.brokerId)
      throw errorOf(
        'CLUSTER_ID_MISMATCH',
        `${options.dataDir} belongs to broker ${existing.brokerId}, not ${options.brokerId} (start it with --broker-id ${existing.brokerId})`,
      );
    const plane = await ControlPlane.connect({
      address,
      ...(options.connectTimeoutMs !== undefined ? { connectTimeoutMs: options.connectTimeoutMs } : {}),
      ...(options.onConnectRetry !== undefined ? { onRetry: options.onConnectRetry } : {}),
    });
    let session: BrokerSession | null = null;
    try {
      const clusterId = await plane.clusterId(existing?.clusterId ?? randomUUID());
      if (existing !== null && existing.clusterId !== clusterId)
        throw errorOf(
          'CLUSTER_ID_MISMATCH',
          `${options.dataDir} belongs to cluster ${existing.clusterId}, not ${clusterId} (use a new data directory to join this cluster)`,
        );
      session = await plane.register(
        { brokerId: options.brokerId, advertise: options.advertise, startedAtMs: Date.now() },
        options.leaseTtlSeconds ?? DEFAULT_LEASE_TTL_SECONDS,
      );
      await claimIdentity(options.dataDir, { clusterId, brokerId: options.brokerId });
      const service = await ControllerService.start(plane, session, options.events ?? {});
      return new ClusterMember(options, clusterId, plane, session, service);
    } catch (error) {
      await session?.close().catch(() => undefined);
      await plane.close().catch(() => undefined);
      throw error;
    }
  }

  /** The cluster's metadata as this broker last heard it (kept current by the watch). */
  get metadata(): MetadataCache {
    return this.service.cache;
  }

  /** True while this broker holds the controller role. */
  get isController(): boolean {
    return this.service.term !== null;
  }

  /** etcd, for the writes a member makes itself (a leader's ISR changes). */
  get controlPlane(): ControlPlane {
    return this.plane;
  }

  get controllerService(): ControllerService {
    return this.service;
  }

  /** Called when the membership lease is lost (etcd unreachable longer than the lease). */
  onLeaseLost(listener: (error: Error) => void): void {
    this.session.onLost(listener);
  }

  /** Leaves the cluster: the controller role is resigned, the registration revoked, etcd closed. */
  async leave(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.service.stop();
    await this.session.close().catch(() => undefined);
    await this.plane.close();
  }
}
