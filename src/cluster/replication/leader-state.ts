// The leader side of one replicated partition at one leader epoch: followers' positions, the
// in-sync replica set (as proposals to the controller), the high watermark, acks=all waiters and
// epoch fencing. Sans-IO: time comes in as `nowMs`, requests come in as data, and every effect
// goes out as an action; it never reads the log itself (the broker passes positions in).

import type { ErrorName } from '../../protocol/error-codes.js';
import { faultSwitchOn } from '../test-switches.js';
import type { LeaderEpochCache } from './leader-epoch-cache.js';
import type {
  EpochAnswer,
  EpochQuery,
  LeaderAction,
  ReplicaFetchAnswer,
  ReplicaFetchRequest,
} from './messages.js';
import { minOffset } from './offsets.js';

export interface LeaderConfig {
  readonly brokerId: number;
  readonly leaderEpoch: number;
  /** Every replica of the partition, this broker included. */
  readonly replicas: readonly number[];
  /** The ISR and its version as the controller last wrote them (this broker included). */
  readonly isr: readonly number[];
  readonly isrVersion: number;
  /** A follower that has not caught up for longer than this leaves the ISR. */
  readonly replicaLagTimeMs: number;
  /** acks=all needs at least this many ISR members (the leader counts). */
  readonly minInsyncReplicas: number;
  /** An ISR proposal left unanswered this long is sent again. */
  readonly isrProposalRetryMs: number;
}

export interface LeaderStart {
  readonly logStartOffset: bigint;
  readonly logEndOffset: bigint;
  /**
   * The leader's own contribution to the high watermark: its log end, or its locally stable
   * (fsynced) end when the topic's durability is `always`.
   */
  readonly localEnd: bigint;
  /** The high watermark this replica knew before leading (it never moves backwards). */
  readonly highWatermark: bigint;
  readonly nowMs: number;
}

/** What the leader knows of one follower in this epoch. */
export interface FollowerProgress {
  /** Highest position (stable offset) reported in this epoch; null until its first fetch. */
  readonly position: bigint | null;
  readonly lastCaughtUpTimeMs: number;
}

interface MutableFollowerProgress {
  position: bigint | null;
  lastCaughtUpTimeMs: number;
  lastFetchTimeMs: number;
  /** The leader's log end when this follower fetched last; null before its first fetch. */
  lastFetchLeaderLogEnd: bigint | null;
}

interface PendingIsr {
  readonly isr: readonly number[];
  readonly baseVersion: number;
  sentAtMs: number;
}

interface Waiter {
  readonly requestId: number;
  readonly lastOffset: bigint;
  readonly deadlineMs: number;
}

export type Acks = 0 | 1 | 'all';

export class LeaderState {
  readonly leaderEpoch: number;
  /** The leader's log end when it took over: a follower has fetched in this epoch once past it. */
  readonly epochStartOffset: bigint;
  private config: LeaderConfig;
  private readonly epochCache: LeaderEpochCache;
  private readonly followers = new Map<number, MutableFollowerProgress>();
  private isrMembers: readonly number[];
  private isrVersionValue: number;
  private pending: PendingIsr | null = null;
  private waiters: Waiter[] = [];
  private logStart: bigint;
  private logEnd: bigint;
  private localEnd: bigint;
  private highWatermarkValue: bigint;
  private resigned = false;

  /** Use LeaderState.become (subclasses: call begin() next, as become does). */
  protected constructor(config: LeaderConfig, epochCache: LeaderEpochCache, start: LeaderStart) {
    this.config = config;
    this.leaderEpoch = config.leaderEpoch;
    this.epochCache = epochCache;
    this.epochStartOffset = start.logEndOffset;
    this.isrMembers = [...config.isr];
    this.isrVersionValue = config.isrVersion;
    this.logStart = start.logStartOffset;
    this.logEnd = start.logEndOffset;
    this.localEnd = start.localEnd;
    this.highWatermarkValue = minOffset(start.highWatermark, start.logEndOffset);
    for (const replica of config.replicas) {
      if (replica === config.brokerId) continue;
      // ISR members count as caught up when the epoch starts (Kafka does the same): they get
      // replicaLagTimeMs to show up before they are proposed for removal.
      this.followers.set(replica, {
        position: null,
        lastCaughtUpTimeMs: config.isr.includes(replica) ? start.nowMs : Number.NEGATIVE_INFINITY,
        lastFetchTimeMs: Number.NEGATIVE_INFINITY,
        lastFetchLeaderLogEnd: null,
      });
    }
  }

  /**
   * This broker leads the partition at `config.leaderEpoch` from now on. The epoch is recorded in
   * the cache at the current log end (an older epoch than the cache's latest is refused).
   */
  static become(
    config: LeaderConfig,
    epochCache: LeaderEpochCache,
    start: LeaderStart,
  ): { leader: LeaderState; actions: LeaderAction[] } {
    const leader = new LeaderState(config, epochCache, start);
    return { leader, actions: leader.begin() };
  }

  /** Records this epoch in the cache at the log end, and moves the high watermark if it can. */
  protected begin(): LeaderAction[] {
    const actions: LeaderAction[] = [];
    if (this.epochCache.assign(this.leaderEpoch, this.epochStartOffset))
      actions.push({ type: 'write-epoch-checkpoint', bytes: this.epochCache.encode() });
    // A leader alone in its ISR can move the high watermark at once.
    this.advanceHighWatermark(actions);
    return actions;
  }

  get highWatermark(): bigint {
    return this.highWatermarkValue;
  }

  get isr(): readonly number[] {
    return this.isrMembers;
  }

  get isrVersion(): number {
    return this.isrVersionValue;
  }

  /** The ISR proposal waiting for the controller, if any. */
  get pendingIsr(): readonly number[] | null {
    return this.pending?.isr ?? null;
  }

  /**
   * The ISR the high watermark waits for: the committed ISR plus a proposed member. A proposed
   * member counts at once because the controller may commit it (and then elect it) at any moment;
   * a member proposed for removal still counts until the removal is committed.
   */
  get maximalIsr(): readonly number[] {
    if (this.pending === null) return this.isrMembers;
    return [...new Set([...this.isrMembers, ...this.pending.isr])];
  }

  get isResigned(): boolean {
    return this.resigned;
  }

  follower(replicaId: number): FollowerProgress | undefined {
    const progress = this.followers.get(replicaId);
    return progress && { position: progress.position, lastCaughtUpTimeMs: progress.lastCaughtUpTimeMs };
  }

  /**
   * May a produce request with these acks be appended now? NOT_ENOUGH_REPLICAS when acks=all and
   * the committed ISR is smaller than minInsyncReplicas (never a silent downgrade to acks=1).
   */
  checkAppend(acks: Acks): ErrorName | null {
    if (this.resigned) return 'NOT_LEADER';
    if (acks === 'all' && this.isrMembers.length < this.config.minInsyncReplicas)
      return 'NOT_ENOUGH_REPLICAS';
    return null;
  }

  /**
   * The topic's minInsyncReplicas changed while this broker leads it: acks=all appends are checked
   * against the new value from now on, and so are the requests already waiting, when the high
   * watermark passes them (the value counts when they complete, as it does for an ISR change).
   */
  setMinInsyncReplicas(minInsyncReplicas: number): void {
    this.config = { ...this.config, minInsyncReplicas };
  }

  /** The local log grew or became stable: `localEnd` is the leader's own high-watermark contribution. */
  onLocalProgress(progress: { logEndOffset: bigint; localEnd: bigint }): LeaderAction[] {
    if (progress.logEndOffset > this.logEnd) this.logEnd = progress.logEndOffset;
    if (progress.localEnd > this.localEnd) this.localEnd = progress.localEnd;
    const actions: LeaderAction[] = [];
    this.advanceHighWatermark(actions);
    return actions;
  }

  /** Retention moved the log start: the cache forgets the epochs before it. */
  onLogStartOffset(logStartOffset: bigint): LeaderAction[] {
    if (logStartOffset <= this.logStart) return [];
    this.logStart = logStartOffset;
    return this.epochCache.truncateFromStart(logStartOffset)
      ? [{ type: 'write-epoch-checkpoint', bytes: this.epochCache.encode() }]
      : [];
  }

  /**
   * An acks=all request appended up to `lastOffset` waits until the high watermark passes it.
   * When it does, the request is acknowledged if the committed ISR still has minInsyncReplicas
   * members, and answered NOT_ENOUGH_REPLICAS_AFTER_APPEND otherwise (Kafka's rule: the records
   * are in the log and will not be removed, but fewer copies hold them than the topic demands;
   * the producer retries and idempotence removes the duplicate). Past `deadlineMs` it is answered
   * REQUEST_TIMEOUT; a leader that resigns answers NOT_LEADER.
   */
  awaitReplication(requestId: number, lastOffset: bigint, deadlineMs: number): LeaderAction[] {
    if (this.resigned) return [{ type: 'complete-produce', requestId, error: 'NOT_LEADER' }];
    // Deliberately broken, for the fault battery only (test-switches.ts).
    if (faultSwitchOn('ack-before-isr')) return [{ type: 'complete-produce', requestId, error: null }];
    this.waiters.push({ requestId, lastOffset, deadlineMs });
    const actions: LeaderAction[] = [];
    this.completeWaiters(actions);
    return actions;
  }

  /** A follower's replica fetch: fencing, its progress, the ISR and the high watermark. */
  handleFetch(
    request: ReplicaFetchRequest,
    nowMs: number,
  ): { answer: ReplicaFetchAnswer; actions: LeaderAction[] } {
    const refused = this.fence(request.replicaId, request.leaderEpoch);
    if (refused !== null) return { answer: { error: refused, leaderEpoch: this.leaderEpoch }, actions: [] };
    const { fetchOffset } = request;
    // The log start goes with the answer: a follower below it cannot fetch what retention removed,
    // and starts its log again there (follower-state.ts).
    if (fetchOffset < this.logStart || fetchOffset > this.logEnd)
      return {
        answer: {
          error: 'OFFSET_OUT_OF_RANGE',
          leaderEpoch: this.leaderEpoch,
          logStartOffset: this.logStart,
        },
        actions: [],
      };
    const position = minOffset(request.stableOffset, fetchOffset);
    const progress = this.followers.get(request.replicaId)!;
    // Kafka's rule: caught up now if it holds the leader's whole log, or caught up as of its
    // previous fetch if it now holds what the leader had then.
    if (position >= this.logEnd) progress.lastCaughtUpTimeMs = Math.max(progress.lastCaughtUpTimeMs, nowMs);
    else if (progress.lastFetchLeaderLogEnd !== null && position >= progress.lastFetchLeaderLogEnd)
      progress.lastCaughtUpTimeMs = Math.max(progress.lastCaughtUpTimeMs, progress.lastFetchTimeMs);
    progress.lastFetchLeaderLogEnd = this.logEnd;
    progress.lastFetchTimeMs = nowMs;
    // Fetches can arrive out of order; what a follower held once in this epoch it still holds
    // (its stable data survives a restart, and it only truncates when the epoch changes).
    if (progress.position === null || position > progress.position) progress.position = position;

    const actions: LeaderAction[] = [];
    this.maybeExpandIsr(request.replicaId, nowMs, actions);
    this.advanceHighWatermark(actions);
    return {
      answer: {
        error: null,
        leaderEpoch: this.leaderEpoch,
        fetchOffset,
        endOffset: this.logEnd,
        highWatermark: this.highWatermarkValue,
        logStartOffset: this.logStart,
      },
      actions,
    };
  }

  /** OffsetsForLeaderEpoch from a follower: where `queryEpoch` ends in this leader's log. */
  handleEpochQuery(query: EpochQuery): EpochAnswer {
    const refused = this.fence(query.replicaId, query.leaderEpoch);
    if (refused !== null) return { error: refused };
    const { epoch, endOffset } = this.epochCache.endOffsetFor(query.queryEpoch, this.logEnd);
    return { error: null, epoch, endOffset };
  }

  /** Time passes: ISR shrink proposals, proposal retries, expired acks=all waiters. */
  tick(nowMs: number): LeaderAction[] {
    const actions: LeaderAction[] = [];
    if (this.resigned) return actions;
    if (this.pending !== null) {
      if (nowMs - this.pending.sentAtMs >= this.config.isrProposalRetryMs) {
        this.pending.sentAtMs = nowMs;
        actions.push(this.proposal(this.pending));
      }
    } else {
      const lagging = this.isrMembers.filter(
        (id) => id !== this.config.brokerId && !this.isCaughtUp(id, nowMs),
      );
      if (lagging.length > 0)
        this.propose(
          this.isrMembers.filter((id) => !lagging.includes(id)),
          nowMs,
          actions,
        );
    }
    const expired = this.waiters.filter((waiter) => waiter.deadlineMs <= nowMs);
    if (expired.length > 0) {
      this.waiters = this.waiters.filter((waiter) => waiter.deadlineMs > nowMs);
      for (const waiter of expired)
        actions.push({ type: 'complete-produce', requestId: waiter.requestId, error: 'REQUEST_TIMEOUT' });
    }
    return actions;
  }

  /**
   * The ISR as the controller wrote it: the answer to a proposal, or a change it made itself (a
   * dead follower removed). Only a newer version counts, and it settles a pending proposal: the
   * controller compares-and-swaps on the version the proposal was based on, so once a newer
   * version exists that proposal is either in it or can never be written. An answer at the same
   * version settles nothing (a late reply to an earlier attempt looks just like that), so the
   * proposal stays pending, keeps counting in the maximal ISR, and is sent again.
   */
  applyIsr(isr: readonly number[], isrVersion: number, nowMs: number): LeaderAction[] {
    if (this.resigned || isrVersion <= this.isrVersionValue) return [];
    this.pending = null;
    for (const id of isr) {
      const progress = this.followers.get(id);
      if (progress !== undefined && !this.isrMembers.includes(id))
        progress.lastCaughtUpTimeMs = Math.max(progress.lastCaughtUpTimeMs, nowMs);
    }
    this.isrMembers = [...isr];
    this.isrVersionValue = isrVersion;
    const actions: LeaderAction[] = [];
    this.advanceHighWatermark(actions);
    return actions;
  }

  /** This broker no longer leads (a newer epoch, or shutdown): waiting acks=all requests fail. */
  resign(): LeaderAction[] {
    if (this.resigned) return [];
    this.resigned = true;
    const actions: LeaderAction[] = this.waiters.map((waiter) => ({
      type: 'complete-produce' as const,
      requestId: waiter.requestId,
      error: 'NOT_LEADER' as const,
    }));
    this.waiters = [];
    this.pending = null;
    return actions;
  }

  /**
   * The high watermark the maximal ISR supports now: the smallest position among its members (the
   * leader's own is its local end). A member that has not fetched in this epoch holds it back.
   * Subclasses in tests replace this to prove the simulator catches a wrong rule.
   */
  protected computeHighWatermark(): bigint | null {
    let lowest = this.localEnd;
    for (const id of this.maximalIsr) {
      if (id === this.config.brokerId) continue;
      const position = this.followers.get(id)?.position ?? null;
      if (position === null) return null;
      if (position < lowest) lowest = position;
    }
    return lowest;
  }

  /** Positions of every replica, for subclasses that compute the high watermark differently. */
  protected positions(): { localEnd: bigint; followers: ReadonlyMap<number, bigint | null> } {
    return {
      localEnd: this.localEnd,
      followers: new Map([...this.followers].map(([id, progress]) => [id, progress.position])),
    };
  }

  private fence(replicaId: number, leaderEpoch: number): ErrorName | null {
    if (this.resigned) return 'NOT_LEADER';
    if (leaderEpoch < this.leaderEpoch) return 'FENCED_LEADER_EPOCH';
    if (leaderEpoch > this.leaderEpoch) return 'UNKNOWN_LEADER_EPOCH';
    if (!this.followers.has(replicaId)) return 'NOT_A_REPLICA';
    return null;
  }

  private isCaughtUp(replicaId: number, nowMs: number): boolean {
    const progress = this.followers.get(replicaId);
    if (progress === undefined) return false;
    if (progress.position !== null && progress.position >= this.logEnd) return true;
    return nowMs - progress.lastCaughtUpTimeMs <= this.config.replicaLagTimeMs;
  }

  private maybeExpandIsr(replicaId: number, nowMs: number, actions: LeaderAction[]): void {
    if (this.pending !== null || this.isrMembers.includes(replicaId)) return;
    const position = this.followers.get(replicaId)?.position ?? null;
    // Reached the high watermark, and fetched past the start of this epoch: so it truncated
    // against this leader and its log below `position` is the leader's.
    if (position === null || position < this.highWatermarkValue || position < this.epochStartOffset) return;
    this.propose([...this.isrMembers, replicaId], nowMs, actions);
  }

  private propose(isr: readonly number[], nowMs: number, actions: LeaderAction[]): void {
    this.pending = { isr, baseVersion: this.isrVersionValue, sentAtMs: nowMs };
    actions.push(this.proposal(this.pending));
  }

  private proposal(pending: PendingIsr): LeaderAction {
    return {
      type: 'propose-isr',
      leaderEpoch: this.leaderEpoch,
      isrVersion: pending.baseVersion,
      isr: pending.isr,
    };
  }

  private advanceHighWatermark(actions: LeaderAction[]): void {
    if (this.resigned) return;
    const candidate = this.computeHighWatermark();
    if (candidate !== null && candidate > this.highWatermarkValue) {
      this.highWatermarkValue = candidate;
      actions.push({ type: 'high-watermark', highWatermark: candidate });
    }
    this.completeWaiters(actions);
  }

  private completeWaiters(actions: LeaderAction[]): void {
    if (!this.waiters.some((waiter) => waiter.lastOffset < this.highWatermarkValue)) return;
    const enough = this.isrMembers.length >= this.config.minInsyncReplicas;
    const waiting: Waiter[] = [];
    for (const waiter of this.waiters) {
      if (waiter.lastOffset >= this.highWatermarkValue) waiting.push(waiter);
      else
        actions.push({
          type: 'complete-produce',
          requestId: waiter.requestId,
          error: enough ? null : 'NOT_ENOUGH_REPLICAS_AFTER_APPEND',
        });
    }
    this.waiters = waiting;
  }
}
