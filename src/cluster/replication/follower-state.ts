// The follower side of one replicated partition at one leader epoch: first the truncation
// protocol (OffsetsForLeaderEpoch, KIP-101 and KIP-279: cut the log where its history and the
// leader's part, never simply at the high watermark), then replica fetches from the log end,
// appending the leader's batches as they are. Sans-IO: one request in flight at a time, time comes
// in as `nowMs`, every effect goes out as an action, in the order the driver must perform them.

import { type ErrorName, errorOf } from '../../protocol/error-codes.js';
import { faultSwitchOn } from '../test-switches.js';
import { type LeaderEpochCache, UNDEFINED_EPOCH } from './leader-epoch-cache.js';
import type { EpochAnswer, FollowerAction, ReplicaBatch, ReplicaFetchResponse } from './messages.js';
import { minOffset } from './offsets.js';

export interface FollowerConfig {
  readonly brokerId: number;
  readonly leaderId: number;
  readonly leaderEpoch: number;
  /**
   * The topic's durability is `always`: fetches report the locally stable end as this replica's
   * position, so the high watermark only covers what is fsynced here.
   */
  readonly reportStableOffset: boolean;
  /**
   * A request unanswered this long is sent again; the wait doubles on every timeout in a row (up to
   * 8 times this) and returns to this after an answer. The answer to a fetch that timed out is
   * still used if it arrives first and continues the log: on a link slower than the timeout the
   * follower keeps progressing instead of discarding every answer.
   */
  readonly requestTimeoutMs: number;
  /** After an empty fetch, wait this long before the next one (a broker may long-poll instead). */
  readonly idleFetchBackoffMs: number;
  /** After a retriable error, wait this long before trying again. */
  readonly errorBackoffMs: number;
}

export interface FollowerStart {
  readonly logEndOffset: bigint;
  readonly stableOffset: bigint;
  readonly highWatermark: bigint;
  readonly nowMs: number;
}

export type FollowerPhase = 'truncating' | 'fetching' | 'stopped';

interface InFlight {
  readonly requestId: number;
  readonly kind: 'epoch-query' | 'fetch';
  readonly sentAtMs: number;
  /** For an epoch query: the epoch asked about. */
  readonly queryEpoch: number;
}

/** How many timed-out fetches are remembered, so that their late answers can still be used. */
const LATE_FETCHES_REMEMBERED = 8;
/** The request timeout grows up to this multiple of the configured one while requests time out. */
const MAX_TIMEOUT_FACTOR = 8;

/** Errors after which following this leader at this epoch cannot succeed: new metadata is needed. */
const NEEDS_METADATA: ReadonlySet<ErrorName> = new Set<ErrorName>([
  'FENCED_LEADER_EPOCH',
  'NOT_LEADER',
  'NOT_A_REPLICA',
]);

export class FollowerState {
  readonly leaderId: number;
  readonly leaderEpoch: number;
  protected readonly epochCache: LeaderEpochCache;
  private readonly config: FollowerConfig;
  private phaseValue: FollowerPhase = 'truncating';
  private inFlight: InFlight | null = null;
  /** Fetches that timed out, oldest first: a late answer that continues the log is still used. */
  private readonly lateFetches: number[] = [];
  private timeoutMs: number;
  private nextSendAtMs: number;
  private nextRequestId = 1;
  private logEnd: bigint;
  private stable: bigint;
  private highWatermarkValue: bigint;

  constructor(config: FollowerConfig, epochCache: LeaderEpochCache, start: FollowerStart) {
    this.config = config;
    this.timeoutMs = config.requestTimeoutMs;
    this.leaderId = config.leaderId;
    this.leaderEpoch = config.leaderEpoch;
    this.epochCache = epochCache;
    this.logEnd = start.logEndOffset;
    this.stable = minOffset(start.stableOffset, start.logEndOffset);
    this.highWatermarkValue = minOffset(start.highWatermark, start.logEndOffset);
    this.nextSendAtMs = start.nowMs;
    // Nothing here to reconcile: fetch from the (empty) log end straight away.
    if (epochCache.latestEpoch === UNDEFINED_EPOCH) this.phaseValue = 'fetching';
  }

  get phase(): FollowerPhase {
    return this.phaseValue;
  }

  get logEndOffset(): bigint {
    return this.logEnd;
  }

  get highWatermark(): bigint {
    return this.highWatermarkValue;
  }

  /** The next request, when one is due: call after every input and whenever time passes. */
  poll(nowMs: number): FollowerAction[] {
    if (this.phaseValue === 'stopped') return [];
    // This replica holds batches of a newer epoch than the leader it was told to follow: the
    // instruction is stale.
    if (this.epochCache.latestEpoch > this.leaderEpoch) return this.stop('FENCED_LEADER_EPOCH');
    if (this.inFlight !== null) {
      if (nowMs - this.inFlight.sentAtMs < this.timeoutMs) return [];
      this.timedOut(this.inFlight);
    }
    if (nowMs < this.nextSendAtMs) return [];
    const requestId = this.nextRequestId++;
    const { brokerId: replicaId, leaderEpoch } = this.config;
    if (this.phaseValue === 'truncating') {
      const queryEpoch = this.epochCache.latestEpoch;
      this.inFlight = { requestId, kind: 'epoch-query', sentAtMs: nowMs, queryEpoch };
      return [
        {
          type: 'send-epoch-query',
          to: this.leaderId,
          requestId,
          query: { replicaId, leaderEpoch, queryEpoch },
        },
      ];
    }
    this.inFlight = { requestId, kind: 'fetch', sentAtMs: nowMs, queryEpoch: UNDEFINED_EPOCH };
    const stableOffset = this.config.reportStableOffset ? this.stable : this.logEnd;
    return [
      {
        type: 'send-fetch',
        to: this.leaderId,
        requestId,
        request: { replicaId, leaderEpoch, fetchOffset: this.logEnd, stableOffset },
      },
    ];
  }

  /** The local log is fsynced up to `stableOffset` (durability `always` reports it to the leader). */
  onLocalStable(stableOffset: bigint): void {
    const capped = minOffset(stableOffset, this.logEnd);
    if (capped > this.stable) this.stable = capped;
  }

  /**
   * The leader's answer to our OffsetsForLeaderEpoch; answers to other requests are ignored. An
   * answer naming a newer epoch than we asked about, or a negative offset, is refused with
   * INCONSISTENT_REPLICA_FETCH before anything is truncated.
   */
  onEpochAnswer(requestId: number, answer: EpochAnswer, nowMs: number): FollowerAction[] {
    const inFlight = this.take(requestId, 'epoch-query');
    if (inFlight === null) return [];
    if (answer.error !== null) return this.failed(answer.error, nowMs);
    // The leader knows no epoch at or below ours: ours is newer than the leader's, so the leader
    // (or this instruction) is stale.
    if (answer.epoch === UNDEFINED_EPOCH) return this.stop('FENCED_LEADER_EPOCH');
    // The leader answers with an epoch at or below the one asked about, and a real offset.
    if (answer.epoch > inFlight.queryEpoch || answer.endOffset < 0n)
      throw errorOf(
        'INCONSISTENT_REPLICA_FETCH',
        `asked where epoch ${inFlight.queryEpoch} ends, answered (${answer.epoch}, ${answer.endOffset})`,
      );
    const actions: FollowerAction[] = [];
    const done = this.truncateFor(answer.epoch, answer.endOffset, actions);
    if (done) this.phaseValue = 'fetching';
    this.nextSendAtMs = nowMs;
    return [...actions, ...this.poll(nowMs)];
  }

  /**
   * One step of the truncation protocol; returns true when the log now agrees with the leader's.
   * The leader answered (epoch, endOffset): the largest epoch it has at or below the one we asked
   * about, and where that epoch ends in its log. If we have that epoch too, our logs agree below
   * min(its end here, its end there): cut there, done. If we do not (KIP-279), every epoch of ours
   * above the largest one we have below it is unknown to the leader: cut where those start, and
   * ask again about that largest one.
   * Subclasses in tests replace this to prove the simulator catches a wrong rule.
   */
  protected truncateFor(leaderEpoch: number, leaderEndOffset: bigint, actions: FollowerAction[]): boolean {
    // Deliberately broken, for the fault battery only (test-switches.ts).
    if (faultSwitchOn('truncate-to-high-watermark')) {
      this.truncateTo(this.highWatermark, actions);
      return true;
    }
    const ours = this.epochCache.endOffsetFor(leaderEpoch, this.logEnd);
    if (ours.epoch === leaderEpoch) {
      const agreed = minOffset(leaderEndOffset, ours.endOffset);
      this.truncateTo(agreed, actions);
      return true;
    }
    this.truncateTo(ours.endOffset, actions);
    return this.epochCache.latestEpoch === UNDEFINED_EPOCH;
  }

  /** Cuts the log (if it reaches past `offset`) and the epoch cache with it. */
  protected truncateTo(offset: bigint, actions: FollowerAction[]): void {
    if (offset < this.logEnd) {
      actions.push({ type: 'truncate', offset });
      this.logEnd = offset;
      if (this.stable > offset) this.stable = offset;
      if (this.highWatermarkValue > offset) this.highWatermarkValue = offset;
    }
    if (this.epochCache.truncateFromEnd(offset))
      actions.push({ type: 'write-epoch-checkpoint', bytes: this.epochCache.encode() });
  }

  /**
   * The leader's batches for our last fetch: appended as they are, at the offsets they carry.
   * A response that does not continue our log, or carries an epoch newer than the leader's,
   * is refused whole (INCONSISTENT_REPLICA_FETCH) before anything is appended.
   */
  onFetchResponse(requestId: number, response: ReplicaFetchResponse, nowMs: number): FollowerAction[] {
    const inFlight = this.take(requestId, 'fetch');
    if (inFlight === null) {
      if (!this.usesLateAnswer(requestId, response)) return [];
    } else {
      this.timeoutMs = this.config.requestTimeoutMs;
    }
    if (response.error !== null) {
      const leaderStart = response.logStartOffset;
      if (response.error === 'OFFSET_OUT_OF_RANGE' && leaderStart !== undefined && leaderStart > this.logEnd)
        return this.startAt(leaderStart, nowMs);
      if (response.error === 'OFFSET_OUT_OF_RANGE') this.phaseValue = 'truncating';
      return this.failed(response.error, nowMs);
    }
    this.checkContinues(response.batches);
    const actions: FollowerAction[] = [];
    let cacheChanged = false;
    for (const batch of response.batches) {
      actions.push({ type: 'append', batch });
      if (this.epochCache.assign(batch.leaderEpoch, batch.baseOffset)) cacheChanged = true;
      this.logEnd = batch.lastOffset + 1n;
    }
    // After the appends: a crash between the two leaves entries the recovered log can rebuild.
    if (cacheChanged) actions.push({ type: 'write-epoch-checkpoint', bytes: this.epochCache.encode() });
    const leaderHighWatermark = minOffset(response.highWatermark, this.logEnd);
    if (leaderHighWatermark > this.highWatermarkValue) {
      this.highWatermarkValue = leaderHighWatermark;
      actions.push({ type: 'high-watermark', highWatermark: leaderHighWatermark });
    }
    this.nextSendAtMs = response.batches.length > 0 ? nowMs : nowMs + this.config.idleFetchBackoffMs;
    return [...actions, ...this.poll(nowMs)];
  }

  /**
   * Our log ends below the leader's log start: retention removed there what we lack, so no fetch
   * can continue our log. As Kafka's follower does (truncateFullyAndStartAt), the log is emptied
   * and starts again at the leader's log start, with no epochs (the leader's batches bring theirs),
   * and fetching goes on from there. Nothing of ours is lost that the leader still has: our whole
   * log lies below its start.
   */
  private startAt(leaderStart: bigint, nowMs: number): FollowerAction[] {
    this.epochCache.clear();
    this.logEnd = leaderStart;
    this.stable = leaderStart;
    this.highWatermarkValue = leaderStart;
    this.phaseValue = 'fetching';
    this.nextSendAtMs = nowMs;
    return [{ type: 'truncate-fully', offset: leaderStart }, ...this.poll(nowMs)];
  }

  private checkContinues(batches: readonly ReplicaBatch[]): void {
    let expected = this.logEnd;
    let epoch = this.epochCache.latestEpoch;
    for (const batch of batches) {
      const problem =
        batch.baseOffset !== expected
          ? `batch at ${batch.baseOffset}, log end ${expected}`
          : batch.lastOffset < batch.baseOffset
            ? `batch ${batch.baseOffset}..${batch.lastOffset}`
            : batch.leaderEpoch < epoch || batch.leaderEpoch > this.leaderEpoch
              ? `batch epoch ${batch.leaderEpoch} outside ${epoch}..${this.leaderEpoch}`
              : null;
      if (problem !== null) throw errorOf('INCONSISTENT_REPLICA_FETCH', problem);
      expected = batch.lastOffset + 1n;
      epoch = batch.leaderEpoch;
    }
  }

  /** The request in flight timed out: the next one waits longer, and its fetch's answer may still do. */
  private timedOut(inFlight: InFlight): void {
    this.inFlight = null;
    this.timeoutMs = Math.min(this.timeoutMs * 2, this.config.requestTimeoutMs * MAX_TIMEOUT_FACTOR);
    if (inFlight.kind !== 'fetch') return;
    this.lateFetches.push(inFlight.requestId);
    if (this.lateFetches.length > LATE_FETCHES_REMEMBERED) this.lateFetches.shift();
  }

  /**
   * The answer to a fetch that timed out, arriving before the answer to the one sent since: used
   * when it carries batches that continue the log exactly (its errors and anything else are
   * dropped; the fetch in flight answers those). The fetch in flight then counts as timed out.
   */
  private usesLateAnswer(requestId: number, response: ReplicaFetchResponse): boolean {
    const index = this.lateFetches.indexOf(requestId);
    if (index < 0 || this.phaseValue !== 'fetching' || response.error !== null) return false;
    const first = response.batches[0];
    if (first === undefined || first.baseOffset !== this.logEnd) return false;
    if (this.inFlight !== null && this.inFlight.kind !== 'fetch') return false;
    this.lateFetches.splice(0, index + 1);
    if (this.inFlight !== null) this.timedOut(this.inFlight);
    this.timeoutMs = this.config.requestTimeoutMs;
    return true;
  }

  private take(requestId: number, kind: InFlight['kind']): InFlight | null {
    const inFlight = this.inFlight;
    if (this.phaseValue === 'stopped' || inFlight === null) return null;
    if (inFlight.requestId !== requestId || inFlight.kind !== kind) return null;
    this.inFlight = null;
    return inFlight;
  }

  private failed(error: ErrorName, nowMs: number): FollowerAction[] {
    if (NEEDS_METADATA.has(error)) return this.stop(error);
    // UNKNOWN_LEADER_EPOCH (the leader has not heard of our epoch yet), OFFSET_OUT_OF_RANGE (back
    // to truncation) and transient errors: try again after a pause.
    this.nextSendAtMs = nowMs + this.config.errorBackoffMs;
    return [];
  }

  private stop(reason: ErrorName): FollowerAction[] {
    this.phaseValue = 'stopped';
    this.inFlight = null;
    return [{ type: 'refresh-metadata', reason }];
  }
}
