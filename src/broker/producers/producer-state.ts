// Idempotent-producer bookkeeping for one partition: which (producer id, epoch, sequence) batches
// were already written, so a retried batch is answered with its original offsets instead of being
// written twice. Pure state: it never touches files; the partition rebuilds it from batch headers
// on open (the headers carry producer id, epoch and base sequence), so it survives restarts.
//
// Rules (the same as Kafka's, which users of idempotent producers already know):
//  - producer id -1 means "not idempotent": nothing is checked;
//  - an epoch older than the newest seen for the id is fenced (INVALID_PRODUCER_EPOCH);
//  - a newer epoch resets the sequence: its first batch must start at sequence 0;
//  - a batch equal to one of the last RETAINED_BATCHES batches of the producer is a duplicate:
//    answer with the offsets it got the first time;
//  - baseSequence must be lastSequence + 1 (wrapping at 2^31-1); below that and not retained is
//    DUPLICATE_SEQUENCE, above it OUT_OF_ORDER_SEQUENCE (a gap: a batch in between was lost).

import { errorOf } from '../../protocol/error-codes.js';

export const NO_PRODUCER_ID = -1n;
/** How many recent batches per producer are remembered for duplicate detection (Kafka keeps 5). */
export const RETAINED_BATCHES = 5;
const MAX_SEQUENCE = 0x7fffffff;

export interface ProducerBatchInfo {
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
  /** Records in the batch; its last sequence is baseSequence + recordCount - 1. */
  recordCount: number;
}

export interface WrittenBatch {
  baseSequence: number;
  lastSequence: number;
  baseOffset: bigint;
  lastOffset: bigint;
}

interface ProducerEntry {
  epoch: number;
  /** Most recent last. */
  recent: WrittenBatch[];
}

export type SequenceCheck = { kind: 'append' } | { kind: 'duplicate'; batch: WrittenBatch };

function nextSequence(sequence: number): number {
  return sequence === MAX_SEQUENCE ? 0 : sequence + 1;
}

function lastSequenceOf(info: ProducerBatchInfo): number {
  return (info.baseSequence + info.recordCount - 1) % (MAX_SEQUENCE + 1);
}

export class ProducerStateTable {
  private readonly producers = new Map<bigint, ProducerEntry>();

  get size(): number {
    return this.producers.size;
  }

  /** Decides whether a batch is new (append it) or a retry of a written one. Throws on fencing and gaps. */
  check(info: ProducerBatchInfo): SequenceCheck {
    if (info.producerId === NO_PRODUCER_ID) return { kind: 'append' };
    if (info.producerId < 0n || info.baseSequence < 0 || info.producerEpoch < 0) {
      throw errorOf(
        'INVALID_REQUEST',
        `producer id ${info.producerId}, epoch ${info.producerEpoch}, sequence ${info.baseSequence}`,
      );
    }
    const entry = this.producers.get(info.producerId);
    if (entry === undefined || info.producerEpoch > (entry?.epoch ?? -1)) {
      if (info.baseSequence !== 0) {
        throw errorOf(
          entry === undefined ? 'UNKNOWN_PRODUCER_ID' : 'OUT_OF_ORDER_SEQUENCE',
          `producer ${info.producerId} epoch ${info.producerEpoch} must start at sequence 0, got ${info.baseSequence}`,
        );
      }
      return { kind: 'append' };
    }
    if (info.producerEpoch < entry.epoch) {
      throw errorOf(
        'INVALID_PRODUCER_EPOCH',
        `producer ${info.producerId}: epoch ${info.producerEpoch} < current ${entry.epoch}`,
      );
    }
    const last = lastSequenceOf(info);
    for (const batch of entry.recent) {
      if (batch.baseSequence === info.baseSequence && batch.lastSequence === last)
        return { kind: 'duplicate', batch };
    }
    const newest = entry.recent[entry.recent.length - 1];
    if (newest === undefined || info.baseSequence === nextSequence(newest.lastSequence))
      return { kind: 'append' };
    if (info.baseSequence <= newest.lastSequence) {
      throw errorOf(
        'DUPLICATE_SEQUENCE',
        `producer ${info.producerId}: sequence ${info.baseSequence} was written before`,
      );
    }
    throw errorOf(
      'OUT_OF_ORDER_SEQUENCE',
      `producer ${info.producerId}: expected sequence ${nextSequence(newest.lastSequence)}, got ${info.baseSequence}`,
    );
  }

  /** Records a batch that was appended (or found in the log on recovery). */
  record(info: ProducerBatchInfo, baseOffset: bigint, lastOffset: bigint): void {
    if (info.producerId === NO_PRODUCER_ID) return;
    let entry = this.producers.get(info.producerId);
    if (entry === undefined || info.producerEpoch > entry.epoch) {
      entry = { epoch: info.producerEpoch, recent: [] };
      this.producers.set(info.producerId, entry);
    }
    entry.recent.push({
      baseSequence: info.baseSequence,
      lastSequence: lastSequenceOf(info),
      baseOffset,
      lastOffset,
    });
    if (entry.recent.length > RETAINED_BATCHES) entry.recent.shift();
  }

  /** Forgets everything recorded at or after `offset` (the log was truncated there). */
  truncateFrom(offset: bigint): void {
    for (const [id, entry] of this.producers) {
      entry.recent = entry.recent.filter((batch) => batch.lastOffset < offset);
      if (entry.recent.length === 0) this.producers.delete(id);
    }
  }
}
