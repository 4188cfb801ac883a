// One consumer's membership of a group, as the group's coordinator sees it: its member id and
// generation, and the requests that carry them (join, heartbeat, commit, leave, fetch offsets).
// It keeps no partitions; the group consumer decides what a request's outcome means for them.

import { MemoryStreamerError } from '../../common/errors.js';
import type {
  AssignmentStrategy,
  PartitionOffset,
  TopicPartitions,
} from '../../protocol/commands/data-types.js';
import type { Transport } from '../transport.js';

/**
 * Answers that mean the coordinator no longer holds this member in its current generation: the
 * group's state was lost (a restarted broker), the coordinator moved to another broker (which
 * knows the committed offsets but not the members), or the member was dropped or fenced. The
 * member has lost its partitions and must join again.
 */
const MEMBERSHIP_LOST = new Set(['UNKNOWN_MEMBER', 'ILLEGAL_GENERATION', 'UNKNOWN_GROUP', 'NOT_COORDINATOR']);

export function isMembershipLost(error: unknown): error is MemoryStreamerError {
  return error instanceof MemoryStreamerError && MEMBERSHIP_LOST.has(error.codeName);
}

export interface GroupSettings {
  groupId: string;
  topics: string[];
  sessionTimeoutMs: number;
  strategy: AssignmentStrategy;
  timeoutMs: number;
}

export class GroupMembership {
  private memberId = '';
  private generationId = -1;

  constructor(
    private readonly transport: Transport,
    private readonly settings: GroupSettings,
  ) {}

  /** True while this member holds a generation (between a join and the loss of its membership). */
  get joined(): boolean {
    return this.generationId >= 0;
  }

  get generation(): number {
    return this.generationId;
  }

  /**
   * Joins (the coordinator holds the answer until every member has joined) and returns this
   * member's partitions. A member id the coordinator no longer knows is dropped and the join made
   * again as a new member.
   */
  async join(): Promise<TopicPartitions[]> {
    const { groupId, topics, sessionTimeoutMs, strategy, timeoutMs } = this.settings;
    const request = () =>
      this.transport.request(
        'joinGroup',
        { groupId, memberId: this.memberId, topics, sessionTimeoutMs, strategy },
        { timeoutMs: sessionTimeoutMs * 3 + timeoutMs },
      );
    let response: Awaited<ReturnType<typeof request>>;
    try {
      response = await request();
    } catch (error) {
      if (this.memberId === '' || !(error instanceof MemoryStreamerError)) throw error;
      if (error.codeName !== 'UNKNOWN_MEMBER' && error.codeName !== 'UNKNOWN_GROUP') throw error;
      this.memberId = '';
      response = await request();
    }
    this.memberId = response.memberId;
    this.generationId = response.generation;
    return response.assignment;
  }

  /**
   * The coordinator said (or the silence says) this member is gone: it holds no generation until
   * it joins again, under a new member id unless only its generation was stale.
   */
  forget(cause: MemoryStreamerError | null): void {
    this.generationId = -1;
    if (cause?.codeName !== 'ILLEGAL_GENERATION') this.memberId = '';
  }

  async heartbeat(): Promise<void> {
    await this.transport.request(
      'heartbeat',
      { groupId: this.settings.groupId, memberId: this.memberId, generation: this.generationId },
      { timeoutMs: this.settings.timeoutMs },
    );
  }

  async commit(offsets: PartitionOffset[]): Promise<void> {
    await this.transport.request(
      'commitOffsets',
      {
        groupId: this.settings.groupId,
        memberId: this.memberId,
        generation: this.generationId,
        offsets,
      },
      { timeoutMs: this.settings.timeoutMs },
    );
  }

  /** The group's committed offsets, keyed by `partition:topic`. */
  async committedOffsets(): Promise<Map<string, bigint>> {
    const answer = await this.transport.request(
      'fetchOffsets',
      { groupId: this.settings.groupId },
      { timeoutMs: this.settings.timeoutMs },
    );
    return new Map(answer.offsets.map((o) => [`${o.partition}:${o.topic}`, o.offset]));
  }

  async leave(): Promise<void> {
    await this.transport.request(
      'leaveGroup',
      { groupId: this.settings.groupId, memberId: this.memberId, generation: this.generationId },
      { timeoutMs: this.settings.timeoutMs },
    );
  }
}
