// The battery's checks, run on the recorded history and the copies read from the stopped brokers'
// data directories after everything healed. Pure: tested with made-up histories and copies
// (test/chaos/checks.test.ts). Each check returns its violations; the run fails if any has one.
//
// - acknowledged:   every acknowledged `acks: 'all'` message is, exactly once, at the offset it was
//                   acknowledged with, on every in-sync replica;
// - identical:      the copies are the same bytes up to the high watermark (the leader's for an
//                   in-sync replica, its own checkpointed one for a replica outside the ISR);
// - consumed:       every message a consumer was handed is in the final log at its offset (no
//                   consumer saw an offset above a high watermark that was later truncated);
// - streams:        each stream's messages are its versions 0, 1, 2… with no gap, and every
//                   acknowledged expected-version append is in its stream at that version;
// - group-offsets:  the group's committed offsets, as read back, never go backwards, and never
//                   read lower than the last commit acknowledged before they were asked for.

import type { TimedEvent } from './history.js';
import type { ReplicaLog } from './replica-logs.js';

export interface PartitionCopies {
  readonly topic: string;
  readonly partition: number;
  readonly leader: number;
  readonly isr: readonly number[];
  readonly copies: ReadonlyMap<number, ReplicaLog>;
}

export interface CheckResult {
  readonly name: string;
  readonly violations: string[];
}

/** Violations past this many per check are counted, not listed. */
const LISTED = 20;

class Violations {
  readonly list: string[] = [];
  private more = 0;

  add(message: string): void {
    if (this.list.length < LISTED) this.list.push(message);
    else this.more++;
  }

  result(name: string): CheckResult {
    const violations = [...this.list];
    if (this.more > 0) violations.push(`… and ${this.more} more`);
    return { name, violations };
  }
}

function leaderCopy(partition: PartitionCopies): ReplicaLog | null {
  return partition.copies.get(partition.leader) ?? null;
}

function valueAt(log: ReplicaLog, offset: bigint): string | undefined {
  return recordIndex(log).get(offset);
}

const indexes = new WeakMap<ReplicaLog, Map<bigint, string>>();
function recordIndex(log: ReplicaLog): Map<bigint, string> {
  let index = indexes.get(log);
  if (index === undefined) {
    index = new Map(log.records.map((record) => [record.offset, record.value]));
    indexes.set(log, index);
  }
  return index;
}

function partitionsOf(all: readonly PartitionCopies[], topic: string): Map<number, PartitionCopies> {
  return new Map(all.filter((p) => p.topic === topic).map((p) => [p.partition, p]));
}

export function checkAcknowledged(
  events: readonly TimedEvent[],
  all: readonly PartitionCopies[],
  topic: string,
): CheckResult {
  const found = new Violations();
  const partitions = partitionsOf(all, topic);
  const counts = new Map<ReplicaLog, Map<string, number>>();
  const countOf = (log: ReplicaLog, value: string): number => {
    let map = counts.get(log);
    if (map === undefined) {
      map = new Map();
      for (const record of log.records) map.set(record.value, (map.get(record.value) ?? 0) + 1);
      counts.set(log, map);
    }
    return map.get(value) ?? 0;
  };
  for (const event of events) {
    if (event.type !== 'ack') continue;
    const partition = partitions.get(event.partition);
    if (partition === undefined) {
      found.add(`acknowledged ${event.value} on partition ${event.partition}, of which no copy was read`);
      continue;
    }
    const offset = BigInt(event.offset);
    for (const broker of partition.isr) {
      const copy = partition.copies.get(broker);
      if (copy === undefined) {
        found.add(`${topic}/${event.partition}: in-sync replica ${broker} has no copy`);
        continue;
      }
      const value = valueAt(copy, offset);
      if (value !== event.value)
        found.add(
          `${topic}/${event.partition}@${offset}: acknowledged ${event.value} (t=${event.t} ms), broker ${broker} has ${value ?? 'nothing'} there`,
        );
      const times = countOf(copy, event.value);
      if (times > 1)
        found.add(`${topic}/${event.partition}: ${event.value} is ${times} times on broker ${broker}`);
    }
  }
  return found.result('acknowledged');
}

/** The bytes of the batches that start below `limit`. */
function prefixBytes(log: ReplicaLog, limit: bigint): Buffer {
  return Buffer.concat(log.batches.filter((batch) => batch.baseOffset < limit).map((batch) => batch.bytes));
}

export function checkIdentical(all: readonly PartitionCopies[]): CheckResult {
  const found = new Violations();
  for (const partition of all) {
    const leader = leaderCopy(partition);
    if (leader === null) {
      found.add(`${partition.topic}/${partition.partition}: the leader ${partition.leader} holds no copy`);
      continue;
    }
    const leaderHighWatermark = leader.highWatermark ?? leader.logEndOffset;
    for (const [broker, copy] of partition.copies) {
      if (broker === partition.leader) continue;
      const inSync = partition.isr.includes(broker);
      const limit = inSync ? leaderHighWatermark : (copy.highWatermark ?? 0n);
      if (inSync && copy.logEndOffset < limit) {
        found.add(
          `${partition.topic}/${partition.partition}: in-sync broker ${broker} ends at ${copy.logEndOffset}, below the high watermark ${limit}`,
        );
        continue;
      }
      const ours = prefixBytes(copy, limit);
      const theirs = prefixBytes(leader, limit);
      if (!ours.equals(theirs)) {
        const differs = firstDifferentOffset(copy, leader, limit);
        found.add(
          `${partition.topic}/${partition.partition}: broker ${broker} differs from leader ${partition.leader} below ${limit} (first at offset ${differs})`,
        );
      }
    }
  }
  return found.result('identical');
}

function firstDifferentOffset(a: ReplicaLog, b: ReplicaLog, limit: bigint): string {
  const theirs = new Map(b.batches.map((batch) => [batch.baseOffset, batch.bytes]));
  for (const batch of a.batches) {
    if (batch.baseOffset >= limit) break;
    const other = theirs.get(batch.baseOffset);
    if (other === undefined || !other.equals(batch.bytes)) return batch.baseOffset.toString();
  }
  return 'past the end of one copy';
}

export function checkConsumed(
  events: readonly TimedEvent[],
  all: readonly PartitionCopies[],
  topic: string,
): CheckResult {
  const found = new Violations();
  const partitions = partitionsOf(all, topic);
  for (const event of events) {
    if (event.type !== 'consume') continue;
    const leader = partitions.get(event.partition);
    const copy = leader === undefined ? null : leaderCopy(leader);
    if (copy === null) continue; // reported by the other checks
    const value = valueAt(copy, BigInt(event.offset));
    if (value !== event.value)
      found.add(
        `${topic}/${event.partition}@${event.offset}: a consumer saw ${event.value} (t=${event.t} ms), the final log has ${value ?? 'nothing'}`,
      );
  }
  return found.result('consumed');
}

export function checkStreams(
  events: readonly TimedEvent[],
  all: readonly PartitionCopies[],
  topic: string,
): CheckResult {
  const found = new Violations();
  /** key → its messages' values in stream order (from the leaders' copies). */
  const streams = new Map<string, { values: string[]; offsets: bigint[]; partition: number }>();
  for (const partition of all) {
    if (partition.topic !== topic) continue;
    const copy = leaderCopy(partition);
    if (copy === null) continue;
    for (const record of copy.records) {
      if (record.key === null) continue;
      let stream = streams.get(record.key);
      if (stream === undefined) {
        stream = { values: [], offsets: [], partition: partition.partition };
        streams.set(record.key, stream);
      }
      stream.values.push(record.value);
      stream.offsets.push(record.offset);
    }
  }
  for (const [key, stream] of streams) {
    stream.values.forEach((value, sequence) => {
      const version = /^.+-v(\d+)-a\d+$/.exec(value)?.[1];
      if (version === undefined || Number(version) !== sequence)
        found.add(`stream ${key}: sequence ${sequence} holds ${value}, appended for another version`);
    });
  }
  for (const event of events) {
    if (event.type !== 'stream-ack') continue;
    const stream = streams.get(event.key);
    const value = stream?.values[event.version];
    if (value !== event.value)
      found.add(
        `stream ${event.key}: version ${event.version} acknowledged as ${event.value} (t=${event.t} ms), the stream has ${value ?? 'nothing'} there`,
      );
    else if (stream!.offsets[event.version]!.toString() !== event.offset)
      found.add(
        `stream ${event.key}: version ${event.version} acknowledged at offset ${event.offset}, found at ${stream!.offsets[event.version]}`,
      );
  }
  return found.result('streams');
}

export function checkGroupOffsets(events: readonly TimedEvent[]): CheckResult {
  const found = new Violations();
  const observed = new Map<string, { offset: bigint; t: number }>();
  const commits = events.filter((event) => event.type === 'commit');
  for (const event of events) {
    if (event.type !== 'committed') continue;
    for (const [partition, offset] of Object.entries(event.offsets)) {
      const value = BigInt(offset);
      const before = observed.get(partition);
      if (before !== undefined && value < before.offset)
        found.add(
          `group offset of partition ${partition} went back from ${before.offset} (t=${before.t} ms) to ${value} (t=${event.t} ms)`,
        );
      // The last commit acknowledged before these offsets were asked for (commits are made one
      // at a time; a consumer that was handed messages again after a rebalance may commit lower).
      let acknowledged: { offset: bigint; t: number } | undefined;
      for (const commit of commits) {
        if (commit.t >= event.askedAt) break;
        const at = commit.offsets[partition];
        if (at !== undefined) acknowledged = { offset: BigInt(at), t: commit.t };
      }
      if (acknowledged !== undefined && value < acknowledged.offset)
        found.add(
          `group offset of partition ${partition} read as ${value} (t=${event.t} ms) after a commit of ${acknowledged.offset} was acknowledged (t=${acknowledged.t} ms)`,
        );
      if (before === undefined || value > before.offset)
        observed.set(partition, { offset: value, t: event.t });
    }
  }
  return found.result('group-offsets');
}
