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
//   6. run the controller service: the metadata cache, and the controller role when elected;
//   7. heartbeat to the controller (liveness/heartbeat-sender.ts): the broker acts as a leader
//      only while the controller answers (liveness/self-fence.ts).
//
// A broker that loses its lease (etcd unreachable for longer than the lease: a pause, a cut link,
// a loaded machine) is out of the cluster: its registration is gone and the controller has
// fenced it. It registers again under a new lease (a new registration, as a restarted broker
// has), retrying until etcd takes it; meanwhile its heartbeats go unanswered, so it leads nothing.
//
// A failure at any step undoes the steps before it (registration revoked, etcd closed), so a
// broker that cannot join leaves no trace in the cluster. Stopping runs the steps backwards.

import { randomUUID } from 'node:crypto';
import type { ClientTlsOptions } from '../client/tcp-transport.js';
import { errorOf } from '../protocol/error-codes.js';
import { claimIdentity, readIdentity } from './broker-identity.js';
import { parseClusterUrl } from './control-plane/cluster-url.js';
import { type BrokerSession, ControlPlane } from './control-plane/control-plane.js';
import type { MetadataCache } from './control-plane/metadata-cache.js';
import {
  ControllerService,
  type ControllerServiceEvents,
  DEFAULT_FENCING_TIME_MS,
} from './controller/controller-service.js';
import { DEFAULT_HEARTBEAT_INTERVAL_MS, HeartbeatSender } from './liveness/heartbeat-sender.js';
import { SelfFence } from './liveness/self-fence.js';

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
  /**
   * A broker not heard from for this long is fenced by the controller (new leaders for its
   * partitions), and one whose heartbeats are not answered for this long stops leading.
   */
  readonly fencingTimeMs?: number;
  /** How often the broker heartbeats to the controller. */
  readonly heartbeatIntervalMs?: number;
  /** The broker stopped (or started again) acting as a leader on its own. */
  readonly onSelfFence?: (state: 'fenced' | 'unfenced', silentForMs: number) => void;
  /** TLS of the heartbeat connection to the controller, read at each new one; none: plain TCP. */
  readonly heartbeatTls?: () => ClientTlsOptions | undefined;
  /** The lease was lost and the broker registers again (for the log). */
  readonly onLeaseLost?: (error: Error) => void;
  /** A registration attempt after a lost lease failed; the next follows after `delayMs` (for the log). */
  readonly onRejoinRetry?: (attempt: number, error: Error, delayMs: number) => void;
  /** The broker is registered again under a new lease. */
  readonly onRejoined?: (attempts: number, tookMs: number) => void;
}

export const DEFAULT_LEASE_TTL_SECONDS = 1;
/** Waits between registration attempts after a lost lease: doubling from the first to the last. */
const REJOIN_FIRST_DELAY_MS = 100;
const REJOIN_MAX_DELAY_MS = 2_000;
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
  private readonly options: ClusterMemberOptions;
  private readonly plane: ControlPlane;
  private session: BrokerSession;
  private readonly service: ControllerService;
  private readonly fence: SelfFence;
  private readonly heartbeats: HeartbeatSender;
  private stopped = false;
  private leaving = false;
  private rejoining: Promise<void> | null = null;

  private constructor(
    options: ClusterMemberOptions,
    clusterId: string,
    plane: ControlPlane,
    session: BrokerSession,
    service: ControllerService,
    liveness: { fence: SelfFence; heartbeats: HeartbeatSender },
  ) {
    this.options = options;
    this.brokerId = options.brokerId;
    this.advertise = options.advertise;
    this.clusterId = clusterId;
    this.plane = plane;
    this.session = session;
    this.service = service;
    this.fence = liveness.fence;
    this.heartbeats = liveness.heartbeats;
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
      const startedAtMs = Date.now();
      session = await plane.register(
        { brokerId: options.brokerId, advertise: options.advertise, startedAtMs },
        options.leaseTtlSeconds ?? DEFAULT_LEASE_TTL_SECONDS,
      );
      await claimIdentity(options.dataDir, { clusterId, brokerId: options.brokerId });
      const fencingTimeMs = options.fencingTimeMs ?? DEFAULT_FENCING_TIME_MS;
      let heartbeats: HeartbeatSender | null = null;
      const events = options.events ?? {};
      const service = await ControllerService.start(
        plane,
        session,
        {
          ...events,
          onMetadata: (cache, changes) => {
            events.onMetadata?.(cache, changes);
            heartbeats?.onMetadata();
          },
        },
        { fencingTimeMs },
      );
      const fence = new SelfFence(fencingTimeMs, Date.now());
      heartbeats = new HeartbeatSender({
        brokerId: options.brokerId,
        startedAtMs,
        intervalMs: options.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS,
        fence,
        service,
        ...(options.onSelfFence !== undefined ? { onTransition: options.onSelfFence } : {}),
        ...(events.onError !== undefined ? { onError: events.onError } : {}),
        ...(options.heartbeatTls !== undefined ? { tls: options.heartbeatTls } : {}),
      });
      heartbeats.start();
      const member = new ClusterMember(options, clusterId, plane, session, service, { fence, heartbeats });
      member.watchLease(session);
      return member;
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

  /**
   * True while the controller has not answered this broker's heartbeats for the fencing time: it
   * must not act as a leader (the controller may have elected others in its place).
   */
  get selfFenced(): boolean {
    return this.fence.isFenced(Date.now());
  }

  /** How long the controller has not confirmed this broker (for an error message). */
  get silentForMs(): number {
    return this.fence.silentForMs(Date.now());
  }

  /**
   * Starts a controlled shutdown: the controller (this broker's own term, or the one its
   * heartbeats reach) moves leadership of its partitions to other in-sync replicas.
   */
  beginShutdown(): void {
    this.leaving = true;
    this.service.beginShutdown();
    this.heartbeats.beginShutdown();
  }

  /** Partitions this broker leads, as the metadata says. */
  ledPartitions(): Array<{ topic: string; partition: number }> {
    const cache = this.service.cache;
    return cache
      .topics()
      .flatMap(({ value: topic }) =>
        Array.from({ length: topic.partitions }, (_, partition) => ({ topic: topic.name, partition })).filter(
          (p) => cache.partition(p.topic, p.partition)?.value.leader === this.brokerId,
        ),
      );
  }

  /**
   * A controlled shutdown, before the broker stops serving: leadership moves to other in-sync
   * replicas (a partition without one goes offline until this broker is back), then the
   * controller role, if this broker holds it, is resigned so that a standby takes it at once.
   * Waits at most `timeoutMs` for the moves; returns the partitions still led here.
   */
  async controlledShutdown(timeoutMs: number): Promise<Array<{ topic: string; partition: number }>> {
    this.beginShutdown();
    const deadline = Date.now() + timeoutMs;
    while (this.ledPartitions().length > 0 && Date.now() < deadline && !this.stopped)
      await new Promise((resolve) => setTimeout(resolve, 10));
    await this.service.resignForShutdown();
    return this.ledPartitions();
  }

  /** Registers again whenever the lease of `session` is lost, unless the broker is leaving. */
  private watchLease(session: BrokerSession): void {
    session.onLost((error) => {
      if (this.stopped || this.leaving || session !== this.session) return;
      this.options.onLeaseLost?.(error);
      this.rejoining ??= this.rejoin().finally(() => {
        this.rejoining = null;
      });
    });
  }

  private async rejoin(): Promise<void> {
    const lost = this.session;
    const startMs = Date.now();
    // The old lease is let go without a call to etcd (a revoke of a lease the client counts as
    // lost kept the process from exiting at shutdown). Until etcd expires it, its registration
    // holds the broker id and the new one is refused (BROKER_ID_IN_USE): the loop tries again.
    lost.abandon();
    let delayMs = REJOIN_FIRST_DELAY_MS;
    for (let attempt = 1; !this.stopped && !this.leaving; attempt++) {
      const startedAtMs = Date.now();
      try {
        const session = await this.plane.register(
          { brokerId: this.brokerId, advertise: this.advertise, startedAtMs },
          this.options.leaseTtlSeconds ?? DEFAULT_LEASE_TTL_SECONDS,
        );
        if (this.stopped || this.leaving) {
          await session.close().catch(() => undefined);
          return;
        }
        this.session = session;
        this.heartbeats.reregistered(startedAtMs);
        this.service.adoptSession(session);
        this.watchLease(session);
        this.options.onRejoined?.(attempt, Date.now() - startMs);
        return;
      } catch (error) {
        this.options.onRejoinRetry?.(attempt, error as Error, delayMs);
        await new Promise((resolve) => setTimeout(resolve, delayMs).unref());
        delayMs = Math.min(delayMs * 2, REJOIN_MAX_DELAY_MS);
      }
    }
  }

  /** Leaves the cluster: the controller role is resigned, the registration revoked, etcd closed. */
  async leave(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.rejoining;
    await this.heartbeats.stop();
    await this.service.stop();
    await this.session.close().catch(() => undefined);
    await this.plane.close();
  }
}
