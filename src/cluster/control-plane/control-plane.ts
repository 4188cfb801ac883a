import type { Etcd3, IKeyValue, ITxnResponse, Lease, Namespace, Watcher } from 'etcd3';
import { MemoryStreamerError } from '../../common/errors.js';
import { errorOf } from '../../protocol/error-codes.js';
import { etcdClient } from '../../security/etcd-client.js';
import type { ClusterAddress } from './cluster-url.js';
import type { ControllerInfo, MetadataEvent } from './metadata-cache.js';
import { clusterPrefix, KEYS } from './metadata-keys.js';
import {
  type BrokerRegistration,
  decodeBrokerRegistration,
  encodeRecord,
  type PartitionState,
  type TopicRecord,
} from './metadata-records.js';

export interface ControlPlaneOptions {
  readonly address: ClusterAddress;
  /** Deadline of one etcd request (watches and lease keep-alives are streams and have none). */
  readonly callTimeoutMs?: number;
  /** How long `connect` keeps retrying an unreachable etcd, with backoff, before it gives up. */
  readonly connectTimeoutMs?: number;
  /** Told about each failed connection attempt (for the broker's log). */
  readonly onRetry?: (attempt: number, error: Error, delayMs: number) => void;
}

/** etcd refuses transactions of more operations than this (`--max-txn-ops`, default 128). */
export const MAX_PARTITION_UPDATES_PER_WRITE = 100;

export interface PartitionUpdate {
  readonly topic: string;
  readonly partition: number;
  /** The mod revision the caller read; 0n when the partition has no state yet. */
  readonly expectedModRevision: bigint;
  readonly state: PartitionState;
}

export interface MetadataSnapshot {
  readonly events: MetadataEvent[];
  readonly revision: bigint;
}

/** A broker's membership: its lease, kept alive by the client until closed or lost. */
export class BrokerSession {
  readonly brokerId: number;
  private readonly lease: Lease;
  readonly leaseId: string;
  private lostListeners: Array<(error: Error) => void> = [];
  private lostError: Error | null = null;
  private readonly onEnd: (session: BrokerSession) => void;

  constructor(brokerId: number, lease: Lease, leaseId: string, onEnd: (session: BrokerSession) => void) {
    this.brokerId = brokerId;
    this.lease = lease;
    this.leaseId = leaseId;
    this.onEnd = onEnd;
    lease.on('lost', (error) => {
      this.lostError = error;
      for (const listener of this.lostListeners.splice(0)) listener(error);
    });
  }

  /** True once etcd said the lease expired or could not renew it: the broker is out of the cluster. */
  get lost(): boolean {
    return this.lostError !== null;
  }

  onLost(listener: (error: Error) => void): void {
    if (this.lostError !== null) listener(this.lostError);
    else this.lostListeners.push(listener);
  }

  /** Leaves the cluster at once (revokes the lease: the registration and any controller key go). */
  async close(): Promise<void> {
    this.lostListeners = [];
    this.onEnd(this);
    await this.lease.revoke().catch(() => undefined);
  }

  /**
   * Stops heartbeating without telling etcd, as a crashed broker would: the lease expires after
   * its TTL and etcd removes the registration (and the controller key) then.
   */
  abandon(): void {
    this.lostListeners = [];
    this.onEnd(this);
    this.lease.release();
  }
}

export class ControlPlane {
  readonly address: ClusterAddress;
  private readonly client: Etcd3;
  private readonly store: Namespace;
  private readonly watchers = new Set<Watcher>();
  private readonly sessions = new Set<BrokerSession>();

  private constructor(address: ClusterAddress, client: Etcd3) {
    this.address = address;
    this.client = client;
    this.store = client.namespace(clusterPrefix(address.name));
  }

  /**
   * Connects and checks that etcd answers, retrying with exponential backoff (100 ms doubling to
   * 2 s) up to `connectTimeoutMs` (default 10 s). Nothing is written: a broker that cannot reach
   * etcd leaves no partial registration.
   */
  static async connect(options: ControlPlaneOptions): Promise<ControlPlane> {
    const callTimeoutMs = options.callTimeoutMs ?? 2000;
    const client = etcdClient(options.address, callTimeoutMs);
    const plane = new ControlPlane(options.address, client);
    const deadline = Date.now() + (options.connectTimeoutMs ?? 10_000);
    let delayMs = 100;
    for (let attempt = 1; ; attempt++) {
      try {
        await plane.store.get(KEYS.clusterId).string();
        return plane;
      } catch (error) {
        const cause = error instanceof Error ? error : new Error(String(error));
        if (Date.now() + delayMs > deadline) {
          client.close();
          throw errorOf(
            'CONTROL_PLANE_UNAVAILABLE',
            `etcd at ${options.address.endpoints.join(', ')} did not answer after ${attempt} attempts: ${cause.message}`,
            { cause },
          );
        }
        options.onRetry?.(attempt, cause, delayMs);
        await new Promise((resolve) => setTimeout(resolve, delayMs));
        delayMs = Math.min(delayMs * 2, 2000);
      }
    }
  }

  /**
   * The cluster's id: the one stored in etcd, or `proposed` when this is the cluster's first
   * broker (written create-if-absent, so concurrent first brokers agree on one).
   */
  async clusterId(proposed: string): Promise<string> {
    const result = await this.call(() =>
      this.store
        .if(KEYS.clusterId, 'Create', '==', 0)
        .then(this.store.put(KEYS.clusterId).value(proposed))
        .else(this.store.get(KEYS.clusterId))
        .commit(),
    );
    if (result.succeeded) return proposed;
    const stored = firstKv(result)?.value.toString('utf8');
    if (stored === undefined)
      throw errorOf('INVALID_CLUSTER_METADATA', `${KEYS.clusterId}: vanished while read`);
    return stored;
  }

  /**
   * Registers a live broker under a lease of `ttlSeconds` that the client keeps alive. Refused with
   * BROKER_ID_IN_USE while another live broker holds the id; nothing is left behind on refusal.
   */
  async register(registration: BrokerRegistration, ttlSeconds: number): Promise<BrokerSession> {
    const lease = this.store.lease(ttlSeconds);
    let leaseId: string;
    try {
      leaseId = await lease.grant();
    } catch (error) {
      lease.release();
      throw this.unavailable(error);
    }
    const key = KEYS.broker(registration.brokerId);
    let result: ITxnResponse;
    try {
      result = await this.call(() =>
        this.store
          .if(key, 'Create', '==', 0)
          .then(lease.put(key).value(encodeRecord(registration)))
          .else(this.store.get(key))
          .commit(),
      );
    } catch (error) {
      await lease.revoke().catch(() => undefined);
      throw error;
    }
    if (!result.succeeded) {
      await lease.revoke().catch(() => undefined);
      const holder = firstKv(result);
      const advertise =
        holder === undefined ? 'unknown' : decodeBrokerRegistration(key, holder.value).advertise;
      throw errorOf(
        'BROKER_ID_IN_USE',
        `broker id ${registration.brokerId} is held by the live broker at ${advertise}`,
      );
    }
    const session = new BrokerSession(registration.brokerId, lease, leaseId, (ended) =>
      this.sessions.delete(ended),
    );
    this.sessions.add(session);
    return session;
  }

  /**
   * Tries once to become the controller, under the session's lease. Returns the controller term
   * won, or null when another broker holds it (watch the `controller` key to try again).
   */
  async campaign(session: BrokerSession): Promise<ControllerInfo | null> {
    if (session.lost) return null;
    const result = await this.call(() =>
      this.store
        .if(KEYS.controller, 'Create', '==', 0)
        .then(
          this.store
            .put(KEYS.controller)
            .value(JSON.stringify({ brokerId: session.brokerId }))
            .lease(session.leaseId),
        )
        .commit(),
    );
    if (!result.succeeded) return null;
    return { brokerId: session.brokerId, epoch: BigInt(result.header.revision) };
  }

  /** Steps down (e.g. before a planned stop) if `term` is still the current one. */
  async resign(term: ControllerInfo): Promise<void> {
    await this.call(() =>
      this.store
        .if(KEYS.controller, 'Create', '==', term.epoch.toString())
        .then(this.store.delete().key(KEYS.controller))
        .commit(),
    );
  }

  /** Creates a topic with its replica assignment, atomically, if `term` is still the controller. */
  async createTopic(term: ControllerInfo, topic: TopicRecord): Promise<bigint> {
    const key = KEYS.topic(topic.name);
    const result = await this.call(() =>
      this.store
        .if(KEYS.controller, 'Create', '==', term.epoch.toString())
        .and(key, 'Create', '==', 0)
        .then(this.store.put(key).value(encodeRecord(topic)))
        .else(this.store.get(KEYS.controller), this.store.get(key))
        .commit(),
    );
    if (!result.succeeded) throw this.refusal(result, term, `topic ${topic.name}`, 'TOPIC_ALREADY_EXISTS');
    return BigInt(result.header.revision);
  }

  /** Replaces a topic's record (partitions added, settings, reassignment) if unchanged since read. */
  async updateTopic(term: ControllerInfo, topic: TopicRecord, expectedModRevision: bigint): Promise<boolean> {
    return (await this.updateTopics(term, [{ topic, expectedModRevision }])) !== null;
  }

  /**
   * Replaces several topics' records in one transaction (a reassignment plan over several topics
   * starts whole or not at all), if `term` is still the controller and every topic is at the
   * revision the caller read. Returns the etcd revision of the write (a cache holds it once its
   * revision reached that one), or null when a topic moved (read again and retry).
   */
  async updateTopics(
    term: ControllerInfo,
    updates: ReadonlyArray<{ topic: TopicRecord; expectedModRevision: bigint }>,
  ): Promise<bigint | null> {
    if (updates.length === 0) return 0n;
    if (updates.length > MAX_PARTITION_UPDATES_PER_WRITE)
      throw errorOf(
        'INVALID_REQUEST',
        `${updates.length} topics in one write; at most ${MAX_PARTITION_UPDATES_PER_WRITE}`,
      );
    const result = await this.call(() => {
      let txn = this.store.if(KEYS.controller, 'Create', '==', term.epoch.toString());
      for (const { topic, expectedModRevision } of updates)
        txn = txn.and(KEYS.topic(topic.name), 'Mod', '==', expectedModRevision.toString());
      return txn
        .then(
          ...updates.map(({ topic }) => this.store.put(KEYS.topic(topic.name)).value(encodeRecord(topic))),
        )
        .else(this.store.get(KEYS.controller))
        .commit();
    });
    if (!result.succeeded) {
      this.checkStillController(result, term);
      return null;
    }
    return BigInt(result.header.revision);
  }

  /**
   * Replaces a topic's record and writes partition states in one transaction (a reassignment
   * step: the replica set and the ISR must change together), if `term` is still the controller
   * and the topic and every partition are at the revisions the caller read. False when one moved.
   */
  async updateTopicAndPartitions(
    term: ControllerInfo,
    topic: TopicRecord,
    expectedModRevision: bigint,
    updates: readonly PartitionUpdate[],
  ): Promise<boolean> {
    const key = KEYS.topic(topic.name);
    const result = await this.call(() => {
      let txn = this.store
        .if(KEYS.controller, 'Create', '==', term.epoch.toString())
        .and(key, 'Mod', '==', expectedModRevision.toString());
      for (const update of updates) {
        const partitionKey = KEYS.partition(update.topic, update.partition);
        txn =
          update.expectedModRevision === 0n
            ? txn.and(partitionKey, 'Create', '==', 0)
            : txn.and(partitionKey, 'Mod', '==', update.expectedModRevision.toString());
      }
      return txn
        .then(
          this.store.put(key).value(encodeRecord(topic)),
          ...updates.map((update) =>
            this.store.put(KEYS.partition(update.topic, update.partition)).value(encodeRecord(update.state)),
          ),
        )
        .else(this.store.get(KEYS.controller))
        .commit();
    });
    if (!result.succeeded) this.checkStillController(result, term);
    return result.succeeded;
  }

  /** Writes a controller-owned setting (e.g. the drained brokers) if unchanged since read (0n: absent). */
  async writeFenced(
    term: ControllerInfo,
    key: string,
    expectedModRevision: bigint,
    value: string,
  ): Promise<boolean> {
    const result = await this.call(() =>
      this.store
        .if(KEYS.controller, 'Create', '==', term.epoch.toString())
        .and(
          key,
          expectedModRevision === 0n ? 'Create' : 'Mod',
          '==',
          expectedModRevision === 0n ? 0 : expectedModRevision.toString(),
        )
        .then(this.store.put(key).value(value))
        .else(this.store.get(KEYS.controller))
        .commit(),
    );
    if (!result.succeeded) this.checkStillController(result, term);
    return result.succeeded;
  }

  /** Deletes a topic and every partition state of it, if `term` is still the controller. */
  async deleteTopic(term: ControllerInfo, name: string): Promise<void> {
    const key = KEYS.topic(name);
    const result = await this.call(() =>
      this.store
        .if(KEYS.controller, 'Create', '==', term.epoch.toString())
        .and(key, 'Create', '>', 0)
        .then(this.store.delete().key(key), this.store.delete().prefix(KEYS.topicPartitionsPrefix(name)))
        .else(this.store.get(KEYS.controller), this.store.get(key))
        .commit(),
    );
    if (!result.succeeded) throw this.refusal(result, term, `topic ${name}`, 'UNKNOWN_TOPIC');
  }

  /**
   * Writes partition states in one transaction, if `term` is still the controller and every
   * partition is still at the revision the caller read. Returns false when one of them moved (read
   * again and retry); throws NOT_CONTROLLER when the term is over.
   */
  async writePartitionStates(term: ControllerInfo, updates: readonly PartitionUpdate[]): Promise<boolean> {
    if (updates.length === 0) return true;
    if (updates.length > MAX_PARTITION_UPDATES_PER_WRITE)
      throw errorOf(
        'INVALID_REQUEST',
        `${updates.length} partition updates in one write; at most ${MAX_PARTITION_UPDATES_PER_WRITE}`,
      );
    const result = await this.call(() => {
      let txn = this.store.if(KEYS.controller, 'Create', '==', term.epoch.toString());
      for (const update of updates) {
        const key = KEYS.partition(update.topic, update.partition);
        txn =
          update.expectedModRevision === 0n
            ? txn.and(key, 'Create', '==', 0)
            : txn.and(key, 'Mod', '==', update.expectedModRevision.toString());
      }
      return txn
        .then(
          ...updates.map((update) =>
            this.store.put(KEYS.partition(update.topic, update.partition)).value(encodeRecord(update.state)),
          ),
        )
        .else(this.store.get(KEYS.controller))
        .commit();
    });
    if (!result.succeeded) this.checkStillController(result, term);
    return result.succeeded;
  }

  /** One key's value and mod revision (0n when absent). */
  async read(key: string): Promise<{ value: Buffer | null; modRevision: bigint }> {
    const response = await this.call(() => this.store.get(key).exec());
    const kv = response.kvs[0];
    return kv === undefined
      ? { value: null, modRevision: 0n }
      : { value: kv.value, modRevision: BigInt(kv.mod_revision) };
  }

  /** Every key under `prefix`, in key order. */
  async list(prefix: string): Promise<Array<{ key: string; value: Buffer; modRevision: bigint }>> {
    const response = await this.call(() => this.store.getAll().prefix(prefix).exec());
    return response.kvs.map((kv) => ({
      key: kv.key.toString('utf8'),
      value: kv.value,
      modRevision: BigInt(kv.mod_revision),
    }));
  }

  /**
   * Writes `puts` in one transaction if `key` is still at `expectedModRevision` (0n: absent).
   * Returns false when it moved. Not fenced by a controller term: for settings any member may change.
   */
  async writeIfUnchanged(
    key: string,
    expectedModRevision: bigint,
    puts: ReadonlyArray<[string, string]>,
  ): Promise<boolean> {
    const result = await this.call(() =>
      this.store
        .if(
          key,
          expectedModRevision === 0n ? 'Create' : 'Mod',
          '==',
          expectedModRevision === 0n ? 0 : expectedModRevision.toString(),
        )
        .then(...puts.map(([k, v]) => this.store.put(k).value(v)))
        .commit(),
    );
    return result.succeeded;
  }

  /** Every key of the cluster at one revision (one range read): load a MetadataCache with it. */
  async snapshot(): Promise<MetadataSnapshot> {
    const response = await this.call(() => this.store.getAll().prefix('').exec());
    return {
      events: response.kvs.map((kv) => toEvent('put', kv)),
      revision: BigInt(response.header.revision),
    };
  }

  /**
   * Streams every change after `afterRevision`, in order. The watch reconnects by itself after etcd
   * restarts; `onError` hears of a watch that cannot continue (e.g. the revision was compacted:
   * take a new snapshot).
   */
  async watch(
    afterRevision: bigint,
    onEvents: (events: MetadataEvent[]) => void,
    onError: (error: Error) => void,
  ): Promise<() => Promise<void>> {
    const watcher = await this.store
      .watch()
      .prefix('')
      .startRevision((afterRevision + 1n).toString())
      .create();
    this.watchers.add(watcher);
    watcher.on('data', (response) => {
      const events = response.events.map((event) =>
        toEvent(event.type === 'Delete' ? 'delete' : 'put', event.kv),
      );
      if (events.length > 0) onEvents(events);
    });
    watcher.on('error', onError);
    return async () => {
      this.watchers.delete(watcher);
      await watcher.cancel();
    };
  }

  /** Disconnects. Sessions still open are abandoned (they expire after their TTL), not revoked. */
  async close(): Promise<void> {
    for (const session of [...this.sessions]) session.abandon();
    await Promise.all([...this.watchers].map((watcher) => watcher.cancel().catch(() => undefined)));
    this.watchers.clear();
    this.client.close();
  }

  /** Runs one etcd request; transport failures become CONTROL_PLANE_UNAVAILABLE. */
  private async call<T>(request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (error) {
      throw this.unavailable(error);
    }
  }

  private unavailable(error: unknown): MemoryStreamerError {
    if (error instanceof MemoryStreamerError) return error;
    const cause = error instanceof Error ? error : new Error(String(error));
    return errorOf(
      'CONTROL_PLANE_UNAVAILABLE',
      `etcd at ${this.address.endpoints.join(', ')}: ${cause.message}`,
      {
        cause,
      },
    );
  }

  /** A failed controller write: the first else-branch read is the controller key. */
  private checkStillController(result: ITxnResponse, term: ControllerInfo): void {
    const controller = result.responses[0]?.response_range?.kvs[0];
    if (controller === undefined || BigInt(controller.create_revision) !== term.epoch)
      throw errorOf('NOT_CONTROLLER', `controller term ${term.epoch} of broker ${term.brokerId} is over`);
  }

  private refusal(
    result: ITxnResponse,
    term: ControllerInfo,
    what: string,
    otherwise: 'TOPIC_ALREADY_EXISTS' | 'UNKNOWN_TOPIC',
  ): MemoryStreamerError {
    this.checkStillController(result, term);
    return errorOf(otherwise, what);
  }
}

function firstKv(result: ITxnResponse): IKeyValue | undefined {
  return result.responses[0]?.response_range?.kvs[0];
}

function toEvent(type: 'put' | 'delete', kv: IKeyValue): MetadataEvent {
  return {
    type,
    key: kv.key.toString('utf8'),
    value: kv.value,
    createRevision: BigInt(kv.create_revision),
    modRevision: BigInt(kv.mod_revision),
  };
}
