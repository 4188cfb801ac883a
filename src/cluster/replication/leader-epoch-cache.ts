// The leader-epoch cache of one replica: which leader epoch started writing at which offset
// (Kafka's LeaderEpochFileCache), and its checkpoint bytes. It answers "where does epoch E end in
// this log?", the question the truncation protocol asks (OffsetsForLeaderEpoch). It does no file
// I/O: the broker writes and reads the checkpoint bytes.

import { errorOf } from '../../protocol/error-codes.js';
import { decodeLeaderEpochs, encodeLeaderEpochs } from '../../storage/leader-epoch-file.js';

/** No epoch: an empty cache, or an epoch this log does not know. Matches a batch's "no epoch" (-1). */
export const UNDEFINED_EPOCH = -1;
/** No offset: paired with UNDEFINED_EPOCH in an answer. */
export const UNDEFINED_OFFSET = -1n;

const MAX_EPOCH = 0x7fff_ffff; // the batch header's partitionLeaderEpoch is an int32
const MAX_OFFSET = 0x7fff_ffff_ffff_ffffn;

export interface EpochEntry {
  readonly epoch: number;
  /** The first offset written in this epoch. */
  readonly startOffset: bigint;
}

/** The answer to "where does epoch E end": the largest known epoch ≤ E and the offset it ends at. */
export interface EpochEndOffset {
  readonly epoch: number;
  /** Exclusive: the start offset of the next higher epoch, or the log end for the latest epoch. */
  readonly endOffset: bigint;
}

export class LeaderEpochCache {
  // Sorted by epoch and by start offset, both strictly increasing (checked on every change).
  private readonly list: EpochEntry[] = [];

  constructor(entries: readonly EpochEntry[] = []) {
    for (const entry of entries) {
      const latest = this.list.at(-1);
      checkEntry(entry);
      if (latest !== undefined && (entry.epoch <= latest.epoch || entry.startOffset <= latest.startOffset))
        throw errorOf(
          'LEADER_EPOCH_REGRESSION',
          `entry (${entry.epoch}, ${entry.startOffset}) after (${latest.epoch}, ${latest.startOffset})`,
        );
      this.list.push({ epoch: entry.epoch, startOffset: entry.startOffset });
    }
  }

  entries(): readonly EpochEntry[] {
    return this.list.slice();
  }

  get latestEpoch(): number {
    return this.list.at(-1)?.epoch ?? UNDEFINED_EPOCH;
  }

  /** The start offset of `epoch` in this log, or UNDEFINED_OFFSET when it is not here. */
  startOffsetOf(epoch: number): bigint {
    return this.list.find((entry) => entry.epoch === epoch)?.startOffset ?? UNDEFINED_OFFSET;
  }

  /**
   * Records that `epoch` wrote from `startOffset` on; returns whether the cache changed. The same
   * epoch again changes nothing (it keeps its first offset). A newer epoch at the latest entry's own
   * start offset replaces it: that epoch wrote nothing here. An older epoch, or a start offset
   * below the latest one, is refused (LEADER_EPOCH_REGRESSION): it would contradict the log.
   */
  assign(epoch: number, startOffset: bigint): boolean {
    checkEntry({ epoch, startOffset });
    const latest = this.list.at(-1);
    if (latest === undefined) {
      this.list.push({ epoch, startOffset });
      return true;
    }
    if (epoch < latest.epoch || startOffset < latest.startOffset)
      throw errorOf(
        'LEADER_EPOCH_REGRESSION',
        `assign (${epoch}, ${startOffset}) after (${latest.epoch}, ${latest.startOffset})`,
      );
    if (epoch === latest.epoch) return false;
    if (startOffset === latest.startOffset) this.list.pop();
    this.list.push({ epoch, startOffset });
    return true;
  }

  /**
   * Where `requestedEpoch` ends in a log whose end is `logEndOffset` (Kafka's rules):
   * - the latest epoch ends at the log end;
   * - an older epoch ends where the next higher epoch here starts, and the answer names the
   *   largest epoch here that is ≤ the requested one (the requester may not know that epoch);
   * - an epoch below every epoch here ends where the first one starts (the answer keeps the
   *   requested epoch: nothing here belongs to it, and nothing before that offset disagrees);
   * - an epoch above every epoch here, UNDEFINED_EPOCH, or an empty cache: UNDEFINED.
   */
  endOffsetFor(requestedEpoch: number, logEndOffset: bigint): EpochEndOffset {
    const latest = this.list.at(-1);
    if (requestedEpoch === UNDEFINED_EPOCH || latest === undefined || requestedEpoch > latest.epoch)
      return { epoch: UNDEFINED_EPOCH, endOffset: UNDEFINED_OFFSET };
    if (requestedEpoch === latest.epoch) return { epoch: requestedEpoch, endOffset: logEndOffset };
    const higherIndex = this.list.findIndex((entry) => entry.epoch > requestedEpoch);
    const higher = this.list[higherIndex]!; // exists: requestedEpoch < latest.epoch
    const floor = this.list[higherIndex - 1];
    return { epoch: floor?.epoch ?? requestedEpoch, endOffset: higher.startOffset };
  }

  /** Forgets epochs that start at or above `endOffset` (the log was truncated to end there). */
  truncateFromEnd(endOffset: bigint): boolean {
    const before = this.list.length;
    while (this.list.length > 0 && this.list.at(-1)!.startOffset >= endOffset) this.list.pop();
    return this.list.length !== before;
  }

  /** Forgets every entry (the log was emptied and starts again elsewhere). */
  clear(): void {
    this.list.length = 0;
  }

  /**
   * The log now starts at `startOffset` (retention): epochs that ended before it go, and the epoch
   * holding it now starts there.
   */
  truncateFromStart(startOffset: bigint): boolean {
    let holding = -1;
    for (let index = 0; index < this.list.length && this.list[index]!.startOffset <= startOffset; index++)
      holding = index;
    if (holding < 0) return false;
    const entry = this.list[holding]!;
    if (holding === 0 && entry.startOffset === startOffset) return false;
    this.list.splice(0, holding + 1, { epoch: entry.epoch, startOffset });
    return true;
  }

  /** The checkpoint bytes of the current entries. */
  encode(): Buffer {
    return encodeEpochCheckpoint(this.list);
  }

  static decode(bytes: Uint8Array): LeaderEpochCache {
    return new LeaderEpochCache(decodeEpochCheckpoint(bytes));
  }
}

function checkEntry(entry: EpochEntry): void {
  if (!Number.isInteger(entry.epoch) || entry.epoch < 0 || entry.epoch > MAX_EPOCH)
    throw errorOf('LEADER_EPOCH_REGRESSION', `epoch ${entry.epoch} is not an int32 ≥ 0`);
  if (entry.startOffset < 0n || entry.startOffset > MAX_OFFSET)
    throw errorOf('LEADER_EPOCH_REGRESSION', `start offset ${entry.startOffset} is not an int64 ≥ 0`);
}

// The checkpoint's bytes are the log's own leader-epoch file (src/storage/leader-epoch-file.ts,
// where the layout is written): one format, one codec. The entries are checked here as the cache
// takes them (int32 epochs, int64 offsets).

export function encodeEpochCheckpoint(entries: readonly EpochEntry[]): Buffer {
  for (const entry of entries) checkEntry(entry);
  return encodeLeaderEpochs(entries);
}

/** The entries of a checkpoint; any malformed input throws CORRUPT_EPOCH_CHECKPOINT. */
export function decodeEpochCheckpoint(input: Uint8Array): EpochEntry[] {
  return decodeLeaderEpochs(Buffer.from(input.buffer, input.byteOffset, input.byteLength));
}
