// A broker's local copy of the cluster metadata: built from one consistent read of every key under
// the cluster's prefix, then kept current by applying the watch events after that read's revision.
// Pure: it never talks to etcd (control-plane.ts feeds it), so its rules are tested with plain values.
//
// Each entry keeps the etcd mod revision it was read at: the controller's compare-and-swap writes
// name the revision they read, so a write based on a stale view fails instead of winning.

import { errorOf } from '../../protocol/error-codes.js';
import { KEYS, parsePartitionKey } from './metadata-keys.js';
import {
  type BrokerRegistration,
  checkPartitionState,
  decodeBrokerRegistration,
  decodePartitionState,
  decodeTopicRecord,
  type PartitionState,
  type TopicRecord,
} from './metadata-records.js';

export interface Versioned<T> {
  readonly value: T;
  /** etcd mod revision of the key when this value was written. */
  readonly modRevision: bigint;
}

export interface ControllerInfo {
  readonly brokerId: number;
  /** The create revision of the controller key: grows with every new controller term. */
  readonly epoch: bigint;
}

/** One key as read or watched, relative to the cluster prefix. */
export interface MetadataEvent {
  readonly type: 'put' | 'delete';
  readonly key: string;
  readonly value: Buffer;
  readonly createRevision: bigint;
  readonly modRevision: bigint;
}

export type MetadataProblem = { key: string; message: string };

export class MetadataCache {
  private clusterIdValue: string | null = null;
  private controllerValue: ControllerInfo | null = null;
  private readonly brokerMap = new Map<number, BrokerRegistration>();
  private readonly topicMap = new Map<string, Versioned<TopicRecord>>();
  private readonly partitionMap = new Map<string, Versioned<PartitionState>>();
  private revisionValue = 0n;
  private loadedRevision = 0n;
  /** Keys whose values could not be decoded: reported, not applied. */
  readonly problems: MetadataProblem[] = [];

  /** The etcd revision this cache reflects: watch from revision + 1. */
  get revision(): bigint {
    return this.revisionValue;
  }

  get clusterId(): string | null {
    return this.clusterIdValue;
  }

  get controller(): ControllerInfo | null {
    return this.controllerValue;
  }

  brokers(): BrokerRegistration[] {
    return [...this.brokerMap.values()].sort((a, b) => a.brokerId - b.brokerId);
  }

  broker(id: number): BrokerRegistration | undefined {
    return this.brokerMap.get(id);
  }

  topics(): Versioned<TopicRecord>[] {
    return [...this.topicMap.values()].sort((a, b) => (a.value.name < b.value.name ? -1 : 1));
  }

  topic(name: string): Versioned<TopicRecord> | undefined {
    return this.topicMap.get(name);
  }

  /** The partition's state, or undefined while no leader was ever elected for it. */
  partition(topic: string, partition: number): Versioned<PartitionState> | undefined {
    return this.partitionMap.get(KEYS.partition(topic, partition));
  }

  /** Replaces the whole cache with one consistent read taken at `revision`. */
  load(events: readonly MetadataEvent[], revision: bigint): void {
    this.clusterIdValue = null;
    this.controllerValue = null;
    this.brokerMap.clear();
    this.topicMap.clear();
    this.partitionMap.clear();
    this.problems.length = 0;
    // Topics first: a partition's state is checked against its topic's assignment.
    const topicsFirst = [...events].sort(
      (a, b) => Number(b.key.startsWith(KEYS.topicsPrefix)) - Number(a.key.startsWith(KEYS.topicsPrefix)),
    );
    for (const event of topicsFirst) this.applyOne(event);
    this.revisionValue = revision;
    this.loadedRevision = revision;
  }

  /**
   * Applies watch events in order. Events at or below the loaded snapshot's revision are in it
   * already; one revision can hold several events (a lease revoke deletes all its keys at once).
   */
  apply(events: readonly MetadataEvent[]): void {
    for (const event of events) {
      if (event.modRevision <= this.loadedRevision) continue;
      this.applyOne(event);
      if (event.modRevision > this.revisionValue) this.revisionValue = event.modRevision;
    }
  }

  private applyOne(event: MetadataEvent): void {
    const { key } = event;
    try {
      if (key === KEYS.clusterId) {
        this.clusterIdValue = event.type === 'put' ? event.value.toString('utf8') : null;
      } else if (key === KEYS.controller) {
        this.controllerValue = event.type === 'put' ? this.decodeController(event) : null;
      } else if (key.startsWith(KEYS.brokersPrefix)) {
        const id = Number(key.slice(KEYS.brokersPrefix.length));
        if (event.type === 'delete') this.brokerMap.delete(id);
        else {
          const registration = decodeBrokerRegistration(key, event.value);
          if (registration.brokerId !== id)
            throw errorOf('INVALID_CLUSTER_METADATA', `${key}: holds broker ${registration.brokerId}`);
          this.brokerMap.set(id, registration);
        }
      } else if (key.startsWith(KEYS.topicsPrefix)) {
        const name = key.slice(KEYS.topicsPrefix.length);
        if (event.type === 'delete') this.topicMap.delete(name);
        else
          this.topicMap.set(name, {
            value: decodeTopicRecord(key, event.value),
            modRevision: event.modRevision,
          });
      } else if (key.startsWith(KEYS.partitionsPrefix)) {
        if (parsePartitionKey(key) === null)
          throw errorOf('INVALID_CLUSTER_METADATA', `${key}: not a partition key`);
        if (event.type === 'delete') this.partitionMap.delete(key);
        else
          this.partitionMap.set(key, {
            value: this.decodePartition(key, event.value),
            modRevision: event.modRevision,
          });
      }
      // Other keys under the prefix belong to later versions or other tools: ignored.
    } catch (error) {
      this.problems.push({ key, message: error instanceof Error ? error.message : String(error) });
    }
  }

  private decodeController(event: MetadataEvent): ControllerInfo {
    const record = JSON.parse(event.value.toString('utf8')) as { brokerId?: unknown };
    if (typeof record.brokerId !== 'number' || !Number.isSafeInteger(record.brokerId) || record.brokerId < 0)
      throw errorOf('INVALID_CLUSTER_METADATA', `${KEYS.controller}: brokerId must be a broker id`);
    return { brokerId: record.brokerId, epoch: event.createRevision };
  }

  private decodePartition(key: string, value: Buffer): PartitionState {
    const state = decodePartitionState(key, value);
    const [topic, partition] = parsePartitionKey(key)!;
    const replicas = this.topicMap.get(topic)?.value.assignment[partition];
    if (replicas !== undefined) checkPartitionState(key, state, replicas);
    return state;
  }
}
