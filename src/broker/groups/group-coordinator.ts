// Consumer groups on one broker: membership with session timeouts, generations, broker-side range
// assignment, and committed offsets. The rebalance is a barrier (Kafka's eager protocol): when a
// member joins, leaves or times out, the others learn it from their next heartbeat
// (REBALANCE_IN_PROGRESS), commit, and join again; the new assignment is handed out only when every
// member has joined or been dropped, so no partition has two owners at once.
// Offsets persist through an OffsetStore (the broker backs it with the internal topic
// `__consumer_offsets`). No sockets here; time comes from a clock so tests can drive it.

import { randomUUID } from 'node:crypto';
import type { BrokerLogger } from '../../metrics/logger.js';
import type {
  AssignmentStrategy,
  CommitOffsetsRequest,
  DescribeGroupResponse,
  GroupMemberRequest,
  GroupSummary,
  JoinGroupRequest,
  JoinGroupResponse,
  PartitionOffset,
  TopicPartitions,
} from '../../protocol/commands/data-types.js';
import { errorOf } from '../../protocol/error-codes.js';
import { validateGroupId } from './group-placement.js';
import { assignRange } from './range-assignor.js';
import { assignSticky } from './sticky-assignor.js';

export interface OffsetStore {
  /** Durably records committed offsets; resolves when they are stored. */
  append(groupId: string, offsets: readonly PartitionOffset[]): Promise<void>;
  /** Durably forgets the group's offsets of these partitions (a restart must not bring them back). */
  remove(groupId: string, partitions: readonly { topic: string; partition: number }[]): Promise<void>;
}

export interface GroupCoordinatorDeps {
  /** The topic's partition count; throws UNKNOWN_TOPIC when there is no such topic. */
  partitionsOf(topic: string): number;
  /**
   * False once the topic is gone, so the groups' offsets for it are dropped (in a cluster the
   * coordinator may hold no copy of a deleted topic and so never sees it deleted locally).
   * Without it, only `forgetTopic` drops them.
   */
  topicExists?(topic: string): boolean;
  /**
   * The partition's high watermark (what consumers can read up to); null when this broker holds
   * no copy of the partition (a coordinator in a cluster).
   */
  highWatermark(topic: string, partition: number): bigint | null;
  store: OffsetStore;
  now?: () => number;
  logger?: BrokerLogger;
}

interface PendingJoin {
  resolve: (response: JoinGroupResponse) => void;
  reject: (error: Error) => void;
}

interface Member {
  memberId: string;
  topics: string[];
  sessionTimeoutMs: number;
  lastSeen: number;
  pendingJoin: PendingJoin | null;
  assignment: TopicPartitions[];
  /**
   * Cooperative rebalancing: partitions taken from this member in the current generation and not
   * yet handed to anyone else; the member may still commit them (its final position) until then.
   */
  releasing: Set<string>;
}

class Group {
  strategy: AssignmentStrategy = 'range';
  generation = 0;
  rebalancing = false;
  rebalanceDeadline = 0;
  readonly members = new Map<string, Member>();
  /** Members waiting in a join: a join checks "has everyone joined" without a pass over them. */
  joined = 0;
  readonly offsets = new Map<string, PartitionOffset>();
  /**
   * Partition counts of the subscribed topics when the current assignment was computed: a topic
   * that grows (or goes) since then needs a rebalance, else its new partitions are never read.
   */
  assignedCounts = new Map<string, number>();
  /** The last sweep failure logged for this group (logged once, not every sweep). */
  lastFailure: string | null = null;
  /** Commits being stored: the group is not reclaimed under them. */
  commitsInFlight = 0;

  constructor(readonly groupId: string) {}

  summary(): GroupSummary {
    const state = this.members.size === 0 ? 'empty' : this.rebalancing ? 'rebalancing' : 'stable';
    return { groupId: this.groupId, state, generation: this.generation, members: this.members.size };
  }
}

export const MIN_SESSION_TIMEOUT_MS = 1000;
export const MAX_SESSION_TIMEOUT_MS = 300_000;

export class GroupCoordinator {
  private readonly groups = new Map<string, Group>();
  /**
   * How often each topic's offsets were forgotten (deleted): a commit stored across a deletion of
   * its topic must not put the old topic's offset back in memory.
   */
  private readonly forgotten = new Map<string, number>();
  private readonly deps: GroupCoordinatorDeps;
  private readonly now: () => number;
  private readonly logger: BrokerLogger | null;
  private readonly sweeper: NodeJS.Timeout;

  constructor(deps: GroupCoordinatorDeps) {
    this.deps = deps;
    this.now = deps.now ?? Date.now;
    this.logger = deps.logger ?? null;
    this.sweeper = setInterval(() => this.sweep(), 250);
    this.sweeper.unref();
  }

  /** Restores committed offsets read back from the store (last value per partition wins). */
  restore(groupId: string, offsets: readonly PartitionOffset[]): void {
    const group = this.group(groupId);
    for (const o of offsets) group.offsets.set(`${o.topic}\0${o.partition}`, o);
  }

  private group(groupId: string): Group {
    validateGroupId(groupId);
    let group = this.groups.get(groupId);
    if (group === undefined) {
      group = new Group(groupId);
      this.groups.set(groupId, group);
    }
    return group;
  }

  /**
   * A subscribed topic's partition count, 0 once it no longer exists: a member's subscription may
   * outlive its topic, and the group must still rebalance around it.
   */
  private countOf(topic: string): number {
    try {
      return this.deps.partitionsOf(topic);
    } catch (error) {
      if ((error as { codeName?: unknown }).codeName === 'UNKNOWN_TOPIC') return 0;
      throw error;
    }
  }

  private existing(groupId: string): Group {
    const group = this.groups.get(groupId);
    if (group === undefined) throw errorOf('UNKNOWN_GROUP', JSON.stringify(groupId));
    return group;
  }

  join(request: JoinGroupRequest): Promise<JoinGroupResponse> {
    if (request.topics.length === 0)
      throw errorOf('INVALID_REQUEST', 'a group member subscribes to at least one topic');
    for (const topic of request.topics) this.deps.partitionsOf(topic);
    if (
      request.sessionTimeoutMs < MIN_SESSION_TIMEOUT_MS ||
      request.sessionTimeoutMs > MAX_SESSION_TIMEOUT_MS
    ) {
      throw errorOf(
        'INVALID_REQUEST',
        `sessionTimeoutMs ${request.sessionTimeoutMs}: ${MIN_SESSION_TIMEOUT_MS}..${MAX_SESSION_TIMEOUT_MS}`,
      );
    }
    const group = this.group(request.groupId);
    if (group.members.size === 0) group.strategy = request.strategy;
    else if (group.strategy !== request.strategy) {
      throw errorOf(
        'INVALID_REQUEST',
        `group ${group.groupId} uses ${group.strategy} assignment, not ${request.strategy}`,
      );
    }
    let member: Member | undefined;
    if (request.memberId === '') {
      member = {
        memberId: randomUUID(),
        topics: [],
        sessionTimeoutMs: 0,
        lastSeen: 0,
        pendingJoin: null,
        assignment: [],
        releasing: new Set(),
      };
      group.members.set(member.memberId, member);
    } else {
      member = group.members.get(request.memberId);
      if (member === undefined)
        throw errorOf(
          'UNKNOWN_MEMBER',
          `${request.memberId} is not in group ${group.groupId}; join again without a member id`,
        );
    }
    member.topics = [...new Set(request.topics)];
    member.sessionTimeoutMs = request.sessionTimeoutMs;
    member.lastSeen = this.now();
    if (member.pendingJoin === null) group.joined++;
    member.pendingJoin?.reject(
      errorOf('REBALANCE_IN_PROGRESS', 'superseded by a newer join of the same member'),
    );
    const joined = new Promise<JoinGroupResponse>((resolve, reject) => {
      member.pendingJoin = { resolve, reject };
    });
    this.startRebalance(group);
    this.completeIfReady(group);
    return joined;
  }

  private startRebalance(group: Group): void {
    if (!group.rebalancing) {
      group.rebalancing = true;
      let longest = MIN_SESSION_TIMEOUT_MS;
      for (const m of group.members.values()) longest = Math.max(longest, m.sessionTimeoutMs);
      group.rebalanceDeadline = this.now() + longest;
    }
  }

  /** Hands out the next generation once every member has joined (or been dropped). */
  private completeIfReady(group: Group, force = false): void {
    if (!group.rebalancing) return;
    if (!force && group.joined < group.members.size) return;
    const candidates = [...group.members.values()];
    const members = candidates.filter((m) => m.pendingJoin !== null);
    // The assignment is computed before the group changes, so an error leaves the rebalance
    // pending as it was instead of half-done.
    const counts = new Map<string, number>();
    for (const m of members)
      for (const topic of m.topics) if (!counts.has(topic)) counts.set(topic, this.countOf(topic));
    const partitionsOf = (topic: string) => counts.get(topic) ?? 0;
    let assignment = new Map<string, TopicPartitions[]>();
    let withheld = false;
    if (members.length === 0) {
      // Nobody joined: the group empties below.
    } else if (group.strategy === 'range') {
      assignment = assignRange(members, partitionsOf);
    } else {
      // Cooperative: a partition that moves is first only taken from its owner; it is handed to
      // its new owner in the next round, after the old owner has joined without it.
      const target = assignSticky(
        members.map((m) => ({ memberId: m.memberId, topics: m.topics, owned: m.assignment })),
        partitionsOf,
      );
      const owner = new Map<string, string>();
      for (const m of members)
        for (const a of m.assignment) for (const p of a.partitions) owner.set(`${a.topic}\0${p}`, m.memberId);
      for (const [memberId, list] of target) {
        const handed = list
          .map((a) => ({
            topic: a.topic,
            partitions: a.partitions.filter((p) => {
              const current = owner.get(`${a.topic}\0${p}`);
              if (current !== undefined && current !== memberId) {
                withheld = true;
                return false;
              }
              return true;
            }),
          }))
          .filter((a) => a.partitions.length > 0);
        assignment.set(memberId, handed);
      }
    }
    for (const m of candidates) if (m.pendingJoin === null) group.members.delete(m.memberId);
    group.rebalancing = false;
    group.joined = 0;
    if (group.members.size === 0) return;
    group.generation++;
    group.assignedCounts = counts;
    for (const m of group.members.values()) {
      const next = assignment.get(m.memberId) ?? [];
      m.releasing = new Set();
      if (group.strategy !== 'range') {
        const kept = new Set(next.flatMap((a) => a.partitions.map((p) => `${a.topic}\0${p}`)));
        for (const a of m.assignment)
          for (const p of a.partitions)
            if (!kept.has(`${a.topic}\0${p}`)) m.releasing.add(`${a.topic}\0${p}`);
      }
      m.assignment = next;
      m.lastSeen = this.now();
      const pending = m.pendingJoin!;
      m.pendingJoin = null;
      pending.resolve({ memberId: m.memberId, generation: group.generation, assignment: m.assignment });
    }
    if (withheld) this.startRebalance(group);
  }

  private checkMember(request: GroupMemberRequest): { group: Group; member: Member } {
    const group = this.existing(request.groupId);
    const member = group.members.get(request.memberId);
    if (member === undefined)
      throw errorOf('UNKNOWN_MEMBER', `${request.memberId} is not in group ${group.groupId}`);
    if (request.generation !== group.generation) {
      throw errorOf(
        'ILLEGAL_GENERATION',
        `generation ${request.generation}, group is at ${group.generation}`,
      );
    }
    return { group, member };
  }

  heartbeat(request: GroupMemberRequest): void {
    const { group, member } = this.checkMember(request);
    member.lastSeen = this.now();
    if (group.rebalancing)
      throw errorOf('REBALANCE_IN_PROGRESS', `group ${group.groupId}: commit and join again`);
  }

  leave(request: GroupMemberRequest): void {
    const group = this.existing(request.groupId);
    const member = group.members.get(request.memberId);
    if (member === undefined)
      throw errorOf('UNKNOWN_MEMBER', `${request.memberId} is not in group ${group.groupId}`);
    group.members.delete(request.memberId);
    if (member.pendingJoin !== null) group.joined--;
    member.pendingJoin?.reject(errorOf('UNKNOWN_MEMBER', 'left the group'));
    if (group.members.size > 0) {
      this.startRebalance(group);
      this.completeIfReady(group);
    } else {
      group.rebalancing = false;
      this.reclaim(group);
    }
  }

  /**
   * Commits offsets of the member's current generation. Accepted while a rebalance is pending too:
   * the member still owns its partitions until the new generation is handed out.
   */
  async commit(request: CommitOffsetsRequest): Promise<void> {
    const { group, member } = this.checkMember(request);
    member.lastSeen = this.now();
    for (const o of request.offsets) {
      const owned =
        member.assignment.some((a) => a.topic === o.topic && a.partitions.includes(o.partition)) ||
        member.releasing.has(`${o.topic}\0${o.partition}`);
      if (!owned)
        throw errorOf(
          'INVALID_REQUEST',
          `${o.topic}/${o.partition} is not assigned to member ${member.memberId}`,
        );
      const end = this.deps.highWatermark(o.topic, o.partition);
      if (o.offset < 0n || (end !== null && o.offset > end)) {
        throw errorOf('OFFSET_OUT_OF_RANGE', `commit ${o.offset} for ${o.topic}/${o.partition}`);
      }
    }
    const epochs = request.offsets.map((o) => this.forgotten.get(o.topic) ?? 0);
    group.commitsInFlight++;
    try {
      await this.deps.store.append(group.groupId, request.offsets);
    } finally {
      group.commitsInFlight--;
    }
    request.offsets.forEach((o, i) => {
      if ((this.forgotten.get(o.topic) ?? 0) === epochs[i])
        group.offsets.set(`${o.topic}\0${o.partition}`, o);
    });
  }

  fetchOffsets(groupId: string): PartitionOffset[] {
    const group = this.groups.get(groupId);
    return group === undefined ? [] : [...group.offsets.values()];
  }

  list(): GroupSummary[] {
    return [...this.groups.values()]
      .map((g) => g.summary())
      .sort((a, b) => a.groupId.localeCompare(b.groupId));
  }

  describe(groupId: string): DescribeGroupResponse {
    const group = this.existing(groupId);
    const members = [...group.members.values()].map((m) => ({
      memberId: m.memberId,
      assignment: m.assignment,
    }));
    const partitions = new Map<string, { topic: string; partition: number }>();
    for (const m of group.members.values()) {
      for (const a of m.assignment)
        for (const p of a.partitions) partitions.set(`${a.topic}\0${p}`, { topic: a.topic, partition: p });
    }
    for (const o of group.offsets.values())
      partitions.set(`${o.topic}\0${o.partition}`, { topic: o.topic, partition: o.partition });
    const lag = [...partitions.entries()]
      .sort((a, b) => a[0].localeCompare(b[0]))
      .flatMap(([key, { topic, partition }]) => {
        let highWatermark: bigint | null;
        try {
          highWatermark = this.deps.highWatermark(topic, partition);
        } catch {
          return [];
        }
        if (highWatermark === null) return [];
        const committed = group.offsets.get(key)?.offset ?? -1n;
        return [
          {
            topic,
            partition,
            committed,
            highWatermark,
            lag: highWatermark - (committed < 0n ? 0n : committed),
          },
        ];
      });
    return { group: group.summary(), members, lag };
  }

  /**
   * Drops members whose session expired, ends rebalances whose time is up, rebalances groups whose
   * topics changed partition count, and drops offsets of topics that are gone. Runs from a timer:
   * one group's failure is logged and never stops the others (nor escapes the timer).
   */
  sweep(): void {
    const now = this.now();
    const exists = new Map<string, boolean>();
    for (const group of [...this.groups.values()]) {
      try {
        this.sweepGroup(group, now, exists);
        group.lastFailure = null;
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        if (group.lastFailure === reason) continue;
        group.lastFailure = reason;
        this.logger?.error(
          { group: group.groupId, reason },
          'consumer group maintenance failed; the group is tried again at the next sweep',
        );
      }
    }
  }

  private sweepGroup(group: Group, now: number, exists: Map<string, boolean>): void {
    let changed = false;
    for (const member of group.members.values()) {
      if (member.pendingJoin === null && now - member.lastSeen > member.sessionTimeoutMs) {
        group.members.delete(member.memberId);
        changed = true;
      }
    }
    if (changed && group.members.size > 0) this.startRebalance(group);
    if (!group.rebalancing && group.members.size > 0 && this.topicsChanged(group)) this.startRebalance(group);
    if (group.rebalancing) this.completeIfReady(group, now >= group.rebalanceDeadline);
    if (group.members.size === 0) group.rebalancing = false;
    const topicExists = this.deps.topicExists;
    if (topicExists !== undefined) {
      const gone: PartitionOffset[] = [];
      for (const o of group.offsets.values()) {
        let known = exists.get(o.topic);
        if (known === undefined) {
          known = topicExists(o.topic);
          exists.set(o.topic, known);
        }
        if (!known) gone.push(o);
      }
      if (gone.length > 0) this.dropOffsets(group, gone);
    }
    this.reclaim(group);
  }

  /** Whether a subscribed topic's partition count differs from what the assignment was computed with. */
  private topicsChanged(group: Group): boolean {
    for (const [topic, count] of group.assignedCounts) if (this.countOf(topic) !== count) return true;
    return false;
  }

  /**
   * Forgets every group's committed offsets of a deleted topic, in memory at once (a topic of the
   * same name created next starts without them) and in the store.
   */
  async forgetTopic(topic: string): Promise<void> {
    this.forgotten.set(topic, (this.forgotten.get(topic) ?? 0) + 1);
    const removals: Promise<void>[] = [];
    for (const group of [...this.groups.values()]) {
      const gone = [...group.offsets.values()].filter((o) => o.topic === topic);
      if (gone.length > 0) removals.push(this.dropOffsets(group, gone));
      this.reclaim(group);
    }
    await Promise.all(removals);
  }

  private dropOffsets(group: Group, gone: readonly PartitionOffset[]): Promise<void> {
    for (const o of gone) {
      group.offsets.delete(`${o.topic}\0${o.partition}`);
      this.forgotten.set(o.topic, (this.forgotten.get(o.topic) ?? 0) + 1);
    }
    const partitions = gone.map((o) => ({ topic: o.topic, partition: o.partition }));
    return this.deps.store.remove(group.groupId, partitions).catch((error: unknown) => {
      this.logger?.error(
        { group: group.groupId, topic: partitions[0]?.topic, reason: (error as Error).message },
        'offsets of a deleted topic could not be removed from storage; a restart may bring them back',
      );
    });
  }

  /** A group with no members, no rebalance and no committed offsets holds nothing: it goes. */
  private reclaim(group: Group): void {
    if (
      group.members.size === 0 &&
      !group.rebalancing &&
      group.offsets.size === 0 &&
      group.commitsInFlight === 0
    )
      this.groups.delete(group.groupId);
  }

  /**
   * Forgets the groups `leaving` selects (in a cluster, their offsets partition is led elsewhere
   * now): members waiting in a join are told NOT_COORDINATOR and find the new coordinator.
   */
  unload(leaving: (groupId: string) => boolean): void {
    for (const [groupId, group] of this.groups) {
      if (!leaving(groupId)) continue;
      for (const m of group.members.values())
        m.pendingJoin?.reject(errorOf('NOT_COORDINATOR', `${groupId} is coordinated by another broker now`));
      this.groups.delete(groupId);
    }
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const group of this.groups.values()) {
      for (const m of group.members.values()) m.pendingJoin?.reject(errorOf('SHUTTING_DOWN'));
    }
  }
}
