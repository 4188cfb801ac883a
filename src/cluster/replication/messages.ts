// The messages the replication state machines exchange (leader ↔ follower) and the actions they
// ask their driver to perform. Plain data: the broker encodes them on the wire and executes the
// actions; the simulator delivers them through its faulty network. Nothing here does I/O.

import type { ErrorName } from '../../protocol/error-codes.js';

/** One record batch as the leader stored it: the follower appends the same bytes at the same offsets. */
export interface ReplicaBatch {
  readonly baseOffset: bigint;
  readonly lastOffset: bigint;
  /** The epoch of the leader that wrote it (the batch header's partitionLeaderEpoch). */
  readonly leaderEpoch: number;
  readonly bytes: Uint8Array;
}

/** A follower's replica fetch: "I hold everything below `fetchOffset`; send me what follows". */
export interface ReplicaFetchRequest {
  readonly replicaId: number;
  /** The leader epoch the follower follows; a mismatch is fenced either way. */
  readonly leaderEpoch: number;
  readonly fetchOffset: bigint;
  /**
   * What the follower counts towards the high watermark: its log end, or its locally stable
   * (fsynced) end when the topic's durability is `always`. Never above fetchOffset.
   */
  readonly stableOffset: bigint;
}

/** The leader's answer to a replica fetch, before the broker reads the bytes. */
export type ReplicaFetchAnswer =
  | {
      readonly error: null;
      readonly leaderEpoch: number;
      /** Send the batches holding [fetchOffset, endOffset): endOffset is the leader's log end now. */
      readonly fetchOffset: bigint;
      readonly endOffset: bigint;
      readonly highWatermark: bigint;
      readonly logStartOffset: bigint;
    }
  | {
      readonly error: ErrorName;
      readonly leaderEpoch: number;
      /** With OFFSET_OUT_OF_RANGE: where the leader's log starts now (a follower below it restarts there). */
      readonly logStartOffset?: bigint;
    };

/** What the follower receives: the batches the broker read for the answer, or the error. */
export type ReplicaFetchResponse =
  | { readonly error: null; readonly batches: readonly ReplicaBatch[]; readonly highWatermark: bigint }
  | {
      readonly error: ErrorName;
      /** With OFFSET_OUT_OF_RANGE: the leader's log start, when the leader sent it. */
      readonly logStartOffset?: bigint;
    };

/** OffsetsForLeaderEpoch: "where does `queryEpoch` end in your log?" */
export interface EpochQuery {
  readonly replicaId: number;
  readonly leaderEpoch: number;
  readonly queryEpoch: number;
}

export type EpochAnswer =
  | { readonly error: null; readonly epoch: number; readonly endOffset: bigint }
  | { readonly error: ErrorName };

/** Actions both roles emit. */
export type CommonAction =
  /** The high watermark moved up: consumers may now read below it. */
  | { readonly type: 'high-watermark'; readonly highWatermark: bigint }
  /** The epoch cache changed: write these checkpoint bytes (whole file, atomically). */
  | { readonly type: 'write-epoch-checkpoint'; readonly bytes: Buffer };

export type LeaderAction =
  | CommonAction
  /** Ask the controller to write this ISR (compare-and-swap on leaderEpoch and isrVersion). */
  | {
      readonly type: 'propose-isr';
      readonly leaderEpoch: number;
      readonly isrVersion: number;
      readonly isr: readonly number[];
    }
  /** Answer the acks=all produce request `requestId`: null means acknowledged. */
  | { readonly type: 'complete-produce'; readonly requestId: number; readonly error: ErrorName | null };

export type FollowerAction =
  | CommonAction
  | {
      readonly type: 'send-epoch-query';
      readonly to: number;
      readonly requestId: number;
      readonly query: EpochQuery;
    }
  | {
      readonly type: 'send-fetch';
      readonly to: number;
      readonly requestId: number;
      readonly request: ReplicaFetchRequest;
    }
  /** Remove every record at or above `offset` from the local log. */
  | { readonly type: 'truncate'; readonly offset: bigint }
  /**
   * Empty the local log and start it again at `offset` (the leader's log start, above this log's
   * end: retention removed what this replica lacks), its leader-epoch checkpoint emptied too.
   */
  | { readonly type: 'truncate-fully'; readonly offset: bigint }
  /** Append these bytes as they are; the batch starts at `batch.baseOffset`, the current log end. */
  | { readonly type: 'append'; readonly batch: ReplicaBatch }
  /** This follower cannot go on with what it was told: ask the controller for the partition's state. */
  | { readonly type: 'refresh-metadata'; readonly reason: ErrorName };
