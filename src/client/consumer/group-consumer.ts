// A consumer in a group: it reads the partitions the group's coordinator assigns it, from the
// group's committed offsets, heartbeats, commits what the application processed (never the
// message or batch still in its hands), and joins again when the group changes or its membership
// is lost.
//
// Two reasons to join again:
// - rebalance: the coordinator answers a heartbeat with REBALANCE_IN_PROGRESS. In the
//   application's next read (the step is marked due on the delivery, so the commit before a
//   handover is exactly the last position handed out) the member commits, then (range) stops every
//   partition and joins, or (cooperative) joins while it keeps reading, and gives up only the
//   partitions the new assignment takes away, after committing them.
// - lost: the coordinator answers UNKNOWN_MEMBER, ILLEGAL_GENERATION, UNKNOWN_GROUP or
//   NOT_COORDINATOR (its state was lost in a restart, or the group's coordinator moved to another
//   broker, which has the committed offsets but not the members), or it has not answered for a
//   whole session timeout (it has dropped the member by now). The member's partitions may belong
//   to another member already and nothing can be committed for them: at once, without waiting for
//   a read, it stops delivering from them, joins again (retrying while the coordinator cannot be
//   reached), and reads each assigned partition from the group's committed offset. Messages
//   delivered since the last commit come again: at least once, nothing skipped. A commit asked for
//   until the member is back fails with the reason.

import type { MemoryStreamerError } from '../../common/errors.js';
import type { AssignmentStrategy, TopicPartitions } from '../../protocol/commands/data-types.js';
import { type ErrorName, errorOf } from '../../protocol/error-codes.js';
import type { ConsumerSource } from './consumer-source.js';
import type { Delivery } from './delivery.js';
import { GroupMembership, isMembershipLost } from './group-membership.js';
import {
  type ConsumerOptions,
  DEFAULT_AUTO_COMMIT_INTERVAL_MS,
  DEFAULT_SESSION_TIMEOUT_MS,
} from './options.js';
import type { PartitionFeed } from './partition-feed.js';
import { PartitionFeeds, type PartitionPosition } from './partition-feeds.js';
import { backoffMs, delay, isRetriable, retrying } from './retry.js';

export class GroupConsumer implements ConsumerSource {
  private readonly feeds: PartitionFeeds;
  private readonly membership: GroupMembership;
  private readonly groupId: string;
  private readonly strategy: AssignmentStrategy;
  private readonly sessionTimeoutMs: number;
  /** Infinity when auto-commit is off. */
  private readonly autoCommitIntervalMs: number;
  /** The coordinator asked for a rebalance: the next read commits and joins again. */
  private rebalanceDue = false;
  /** Why the membership was lost, for the error of a commit asked for before the member is back. */
  private lostCause: MemoryStreamerError | null = null;
  /** Set by the auto-commit timer; the next read commits (no clock read per message). */
  private commitDue = false;
  /** A join under way in the background: cooperative (the current partitions keep being read) or after a loss. */
  private rejoining: Promise<void> | null = null;
  /** From a join request until its assignment is applied: heartbeats wait for the new generation. */
  private joining = false;
  /** When the coordinator last answered this member; silence for a session means it dropped the member. */
  private lastContact = 0;
  private commitTimer: NodeJS.Timeout | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly delivery: Delivery,
    options: ConsumerOptions & { group: string },
  ) {
    this.groupId = options.group;
    this.strategy = options.assignment ?? 'range';
    this.sessionTimeoutMs = options.sessionTimeoutMs ?? DEFAULT_SESSION_TIMEOUT_MS;
    this.autoCommitIntervalMs =
      options.autoCommit === false
        ? Number.POSITIVE_INFINITY
        : (options.autoCommitIntervalMs ?? DEFAULT_AUTO_COMMIT_INTERVAL_MS);
    this.feeds = new PartitionFeeds(delivery, options.from ?? 'earliest');
    this.membership = new GroupMembership(delivery.transport, {
      groupId: this.groupId,
      topics: options.topics ?? [],
      sessionTimeoutMs: this.sessionTimeoutMs,
      strategy: this.strategy,
      timeoutMs: delivery.timeoutMs,
    });
  }

  /** Joins the group and starts reading the assigned partitions; a failure here is the caller's. */
  async start(): Promise<void> {
    await this.join(false);
    if (this.closed) return;
    if (Number.isFinite(this.autoCommitIntervalMs)) {
      this.commitTimer = setInterval(() => {
        this.commitDue = true;
        this.updateStepDue();
      }, this.autoCommitIntervalMs);
    }
    this.heartbeatTimer = setInterval(
      () => void this.heartbeat(),
      Math.max(100, Math.floor(this.sessionTimeoutMs / 3)),
    );
  }

  async takeDueStep(): Promise<void> {
    if (this.rejoining !== null) return;
    if (this.rebalanceDue) await this.rebalance();
    if (this.commitDue && this.rejoining === null) {
      this.commitDue = false;
      this.updateStepDue();
      await this.autoCommit();
    }
  }

  /** Delivery stops for a step while one is due and no cooperative join is under way. */
  private updateStepDue(): void {
    this.delivery.setStepDue((this.rebalanceDue || this.commitDue) && this.rejoining === null);
  }

  private async heartbeat(): Promise<void> {
    if (this.closed || this.joining || this.rejoining !== null || this.rebalanceDue) return;
    if (!this.membership.joined) return;
    const generation = this.membership.generation;
    try {
      await this.membership.heartbeat();
      this.lastContact = Date.now();
    } catch (error) {
      // An answer about a generation the member has left since (it joined again meanwhile) is old news.
      if (this.closed || this.joining || this.membership.generation !== generation) return;
      if ((error as MemoryStreamerError).codeName === 'REBALANCE_IN_PROGRESS') {
        this.lastContact = Date.now();
        this.rebalanceDue = true;
        this.updateStepDue();
        this.delivery.wake();
      } else if (isMembershipLost(error)) {
        this.lose(error);
      } else if (Date.now() - this.lastContact > this.sessionTimeoutMs) {
        this.lose(
          errorOf(
            'UNKNOWN_MEMBER',
            `no answer from the coordinator of group ${this.groupId} for ${this.sessionTimeoutMs} ms (${(error as Error).message}): it has dropped this member`,
          ),
        );
      }
    }
  }

  /**
   * The member is out of the group: it stops delivering from its partitions now and joins again
   * in the background. (A join already under way settles the membership by itself.)
   */
  private lose(cause: MemoryStreamerError): void {
    if (!this.membership.joined || this.joining || this.rejoining !== null || this.closed) return;
    this.membership.forget(cause);
    this.lostCause = cause;
    this.rebalanceDue = false;
    const stopped = this.feeds.removeAll();
    this.inBackground(stopped.then(() => this.join(true)));
  }

  /** Range: commit, stop every partition, join. Cooperative: commit, then join while reading on. */
  private async rebalance(): Promise<void> {
    this.rebalanceDue = false;
    this.updateStepDue();
    // Commit what was delivered before any partition is given up.
    await this.commitOffsets(this.feeds.all(), false).catch(() => undefined);
    // The commit found the membership lost: that rejoin is under way already.
    if (this.rejoining !== null || !this.membership.joined) return;
    if (this.strategy === 'range') {
      await this.feeds.removeAll();
      await this.join(true).catch((error: unknown) => this.failUnlessClosed(error));
      return;
    }
    this.inBackground(this.join(true));
  }

  private inBackground(join: Promise<void>): void {
    this.rejoining = join
      .catch((error: unknown) => this.failUnlessClosed(error))
      .finally(() => {
        this.rejoining = null;
        this.updateStepDue();
        this.delivery.wake();
      });
    this.updateStepDue();
    this.delivery.wake();
  }

  private failUnlessClosed(error: unknown): void {
    if (!this.closed) this.delivery.fail(error as Error);
  }

  /**
   * Joins and applies the assignment. With `persist` (every join after the first), a join the
   * coordinator cannot take now (it is unreachable, moving, or no longer knows the member) is made
   * again after a backoff until it succeeds or the consumer closes.
   */
  private async join(persist: boolean): Promise<void> {
    this.joining = true;
    try {
      for (let attempt = 0; !this.closed; attempt++) {
        try {
          const assignment = await this.membership.join();
          if (this.closed) {
            // Closed while the coordinator held the join: leave, or the group waits for a ghost.
            await this.membership.leave().catch(() => undefined);
            return;
          }
          this.lastContact = Date.now();
          this.lostCause = null;
          await this.applyAssignment(assignment, persist);
          return;
        } catch (error) {
          if (this.closed) return;
          if (!persist || !(isRetriable(error) || isMembershipLost(error))) throw error;
          if (isMembershipLost(error)) this.membership.forget(error);
          await delay(backoffMs(attempt));
        }
      }
    } finally {
      this.joining = false;
    }
  }

  /**
   * Makes the partitions read equal the assignment: partitions no longer assigned are committed
   * and stopped, new ones start at their committed offsets. With range assignment (or after a
   * lost membership) every partition was already stopped before the join, so everything is new.
   */
  private async applyAssignment(assignment: readonly TopicPartitions[], persist: boolean): Promise<void> {
    const wanted = new Set(assignment.flatMap((a) => a.partitions.map((p) => `${p}:${a.topic}`)));
    const revoked = this.feeds.all().filter((f) => !wanted.has(`${f.partition}:${f.topic}`));
    if (revoked.length > 0) {
      // Stop delivering from them first: the commit below must be the last position handed out,
      // or the next owner would start before messages this member still delivers (duplicates).
      this.feeds.detach(revoked);
      // The message the application is on, when it is from one of them, counts once processed.
      await this.delivery.inHandProcessed(revoked, this.delivery.timeoutMs);
      await this.commitOffsets(revoked, false).catch(() => undefined);
      await Promise.all(revoked.map((feed) => feed.close()));
    }
    const added = assignment
      .flatMap((a) => a.partitions.map((partition) => ({ topic: a.topic, partition })))
      .filter((p) => !this.feeds.has(p.topic, p.partition));
    if (added.length === 0) return;
    const committed = persist
      ? await retrying(
          () => this.membership.committedOffsets(),
          () => this.closed,
        )
      : await this.membership.committedOffsets();
    for (const { topic, partition } of added) {
      if (this.closed) return;
      await this.feeds.open(topic, partition, committed.get(`${partition}:${topic}`) ?? null, persist);
    }
  }

  /**
   * The periodic commit. A commit refused because the member is out of the group is not an error
   * for the application: the member joins again. One that cannot reach the coordinator now is made
   * at the next interval. Anything else fails this read.
   */
  private async autoCommit(): Promise<void> {
    try {
      await this.commitOffsets(this.feeds.all(), false);
    } catch (error) {
      if (isMembershipLost(error) || isRetriable(error)) return;
      throw error;
    }
  }

  /**
   * Commits, for each partition, the first offset the application has not processed (a message
   * counts as processed once the next read is asked for, or `Consumer.commit` was called), retrying
   * for up to the consumer's timeout while the coordinator cannot be reached.
   */
  commit(): Promise<void> {
    return this.commitOffsets(this.feeds.all(), true);
  }

  private async commitOffsets(feeds: readonly PartitionFeed[], persist: boolean): Promise<void> {
    if (!this.membership.joined) {
      if (this.lostCause !== null) throw this.notCommitted(this.lostCause);
      return;
    }
    const offsets = feeds
      .filter((f) => f.committable >= 0n)
      .map((f) => ({ topic: f.topic, partition: f.partition, offset: f.committable }));
    if (offsets.length === 0) return;
    const deadline = Date.now() + this.delivery.timeoutMs;
    for (let attempt = 0; ; attempt++) {
      const generation = this.membership.generation;
      try {
        await this.membership.commit(offsets);
        this.lastContact = Date.now();
        return;
      } catch (error) {
        if (isMembershipLost(error)) {
          // A cooperative join completed while the commit was on its way: commit in the new generation.
          if (this.membership.joined && this.membership.generation !== generation) continue;
          this.lose(error);
          throw this.notCommitted(error);
        }
        if ((error as MemoryStreamerError).codeName === 'REBALANCE_IN_PROGRESS') {
          this.rebalanceDue = true;
          this.updateStepDue();
        }
        const wait = backoffMs(attempt);
        if (!persist || !isRetriable(error) || this.closed || Date.now() + wait > deadline) throw error;
        await delay(wait);
      }
    }
  }

  /** The error of a commit the coordinator refused because this member is out of the group. */
  private notCommitted(cause: MemoryStreamerError): MemoryStreamerError {
    return errorOf(
      cause.codeName as ErrorName,
      `offsets of group ${this.groupId} not committed: this member is out of the group (${cause.message}); ` +
        'it joins again and reads on from the committed offsets, so messages delivered since the last commit are delivered again',
      { cause },
    );
  }

  seek(topic: string, partition: number, offset: bigint): Promise<void> {
    return this.feeds.seek(topic, partition, offset);
  }

  positions(): PartitionPosition[] {
    return this.feeds.positions();
  }

  resumed(): void {
    this.feeds.grantAll();
  }

  /** Commits (with auto-commit on) and leaves the group, so its partitions move on at once. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    if (this.commitTimer !== null) clearInterval(this.commitTimer);
    if (!this.membership.joined) return;
    if (Number.isFinite(this.autoCommitIntervalMs))
      await this.commitOffsets(this.feeds.all(), false).catch(() => undefined);
    await this.membership.leave().catch(() => undefined);
  }
}
