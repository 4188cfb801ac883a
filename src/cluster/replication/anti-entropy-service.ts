// Anti-entropy with real I/O (docs/replication.md, "Anti-entropy"): on an interval, each follower
// compares the settled segments of the partitions it follows with their leaders' — roots first,
// chunk hashes of the segments whose roots differ, then only the differing byte ranges — and has
// its log rewrite those ranges with the leader's bytes once they hash to the leader's digest. The
// same service answers those requests for the partitions this broker leads, from digests cached
// for one interval. Reads of both sides go through one byte budget per broker. The decisions are
// in anti-entropy.ts; this file only reads, asks and writes.

import type { BrokerCore } from '../../broker/broker-core.js';
import { MemoryStreamerError } from '../../common/errors.js';
import type { BrokerLogger } from '../../metrics/logger.js';
import {
  type AntiEntropyRequests,
  MAX_SEGMENT_RANGE_BYTES,
  type SegmentChunkDigestsRequest,
  type SegmentChunkDigestsResponse,
  type SegmentPartitionRef,
  type SegmentRangeRequest,
  type SegmentRangeResponse,
  type SegmentRoot,
  type SegmentRootsRequest,
  type SegmentRootsResponse,
  segmentChunkDigestsCommand,
  segmentRangeCommand,
  segmentRootsCommand,
} from '../../protocol/commands/anti-entropy-commands.js';
import type { CommandCodec } from '../../protocol/commands/command.js';
import {
  type VerifyPartitionRequest,
  type VerifyPartitionResponse,
  verifyPartitionCommand,
} from '../../protocol/commands/verify-partition.js';
import { errorOf } from '../../protocol/error-codes.js';
import type { PartitionLog } from '../../storage/partition-log.js';
import type { Segment } from '../../storage/segment.js';
import {
  DEFAULT_DIGEST_CHUNK_BYTES,
  ReadBudget,
  type SegmentDigest,
  SegmentDigestCache,
} from '../../storage/segment-digest.js';
import type { RepairRange } from '../../storage/segment-repair.js';
import type { ClusterMember } from '../cluster-member.js';
import { NO_LEADER } from '../control-plane/metadata-records.js';
import {
  type AntiEntropyTotals,
  addCheck,
  emptyTotals,
  type PartitionCheck,
  pagesOf,
  pairSegments,
  planRanges,
  rangeMatches,
  rootsDiffer,
} from './anti-entropy.js';

/** A connection to a partition's leader (the replica manager's TcpTransport). */
export interface LeaderLink {
  call<Request, Response>(
    command: CommandCodec<Request, Response>,
    request: Request,
    options: { timeoutMs: number },
  ): Promise<Response>;
}

/** A partition this broker follows now. */
export interface FollowedPartition {
  readonly topic: string;
  readonly partition: number;
  readonly leaderId: number;
  readonly leaderEpoch: number;
  readonly log: PartitionLog;
  readonly link: LeaderLink;
  /** Compacted topics are cleaned by each replica on its own: their segments may differ rightly. */
  readonly compacted: boolean;
}

/** What the service needs of the replica manager. */
export interface AntiEntropyHost {
  readonly brokerId: number;
  followed(): FollowedPartition[];
  /** The log and epoch of a partition this broker leads now, or undefined. */
  led(topic: string, partition: number): { log: PartitionLog; leaderEpoch: number } | undefined;
  /** The brokers holding a replica of `topic` (undefined: the cluster has no such topic). */
  replicasOf(topic: string): readonly number[] | undefined;
  /** A connection to another broker (null while its address is unknown). */
  linkTo(brokerId: number): LeaderLink | null;
}

export interface AntiEntropyOptions {
  /** Between the end of one round over every followed partition and the next; 0 = no rounds. */
  readonly intervalMs: number;
  /** Digest chunk size (the unit of comparison and of repair). */
  readonly chunkBytes?: number;
  /** Bytes per second digests may read from this broker's disks. */
  readonly readBytesPerSecond?: number;
  /** Largest range one SEGMENT_RANGE asks for. */
  readonly maxRangeBytes?: number;
}

/**
 * The host from the replica manager's replicas (it keeps them private): a follower's leader is the
 * one the metadata names now; a compacted topic's replicas are not compared.
 */
export function antiEntropyHost(
  core: BrokerCore,
  member: ClusterMember,
  replicas: {
    followers(): Iterable<{ topic: string; partition: number; leaderEpoch: number }>;
    leader(
      topic: string,
      partition: number,
    ): { log: PartitionLog; state: { leaderEpoch: number } } | undefined;
    linkTo(brokerId: number): LeaderLink | null;
  },
): AntiEntropyHost {
  return {
    brokerId: member.brokerId,
    followed: () =>
      [...replicas.followers()].flatMap(({ topic, partition, leaderEpoch }) => {
        const leaderId = member.metadata.partition(topic, partition)?.value.leader ?? NO_LEADER;
        const link = leaderId === NO_LEADER ? null : replicas.linkTo(leaderId);
        if (link === null) return [];
        const { log } = core.partition(topic, partition);
        const compacted = core.localTopic(topic)?.config.cleanup === 'compact';
        return [{ topic, partition, leaderId, leaderEpoch, log, link, compacted }];
      }),
    led: (topic, partition) => {
      const leader = replicas.leader(topic, partition);
      return leader && { log: leader.log, leaderEpoch: leader.state.leaderEpoch };
    },
    replicasOf: (topic) => {
      const assignment = member.metadata.topic(topic)?.value.assignment;
      return assignment && [...new Set(assignment.flat())];
    },
    linkTo: (brokerId) => replicas.linkTo(brokerId),
  };
}

/** `cluster.anti_entropy_interval` by default: five minutes. */
export const DEFAULT_ANTI_ENTROPY_INTERVAL_MS = 5 * 60 * 1000;
/** A broker asked to check its replicas of a topic reads all of them under its budget: minutes. */
const VERIFY_TIMEOUT_MS = 600_000;
/** Segments named in one SEGMENT_ROOTS (the leader hashes them before it answers). */
const ROOTS_PAGE = 16;
/** Digest requests wait on the leader's disk budget: a generous deadline. */
const REQUEST_TIMEOUT_MS = 120_000;
const DEFAULT_READ_BYTES_PER_SECOND = 64 * 1024 * 1024;
/** Answers that mean the partition is changing leaders (its follower restarts meanwhile). */
const LEADERSHIP_MOVING = new Set<string>([
  'NOT_LEADER',
  'FENCED_LEADER_EPOCH',
  'UNKNOWN_LEADER_EPOCH',
  'LEADER_NOT_AVAILABLE',
]);

export class AntiEntropyService implements AntiEntropyRequests {
  readonly totals: AntiEntropyTotals = emptyTotals();
  private readonly digests: SegmentDigestCache;
  private readonly chunkBytes: number;
  private readonly maxRangeBytes: number;
  private timer: NodeJS.Timeout | null = null;
  private round: Promise<unknown> = Promise.resolve();
  private stopped = false;

  constructor(
    private readonly host: AntiEntropyHost,
    private readonly logger: BrokerLogger,
    private readonly options: AntiEntropyOptions,
  ) {
    this.chunkBytes = options.chunkBytes ?? DEFAULT_DIGEST_CHUNK_BYTES;
    this.maxRangeBytes = Math.min(options.maxRangeBytes ?? MAX_SEGMENT_RANGE_BYTES, MAX_SEGMENT_RANGE_BYTES);
    this.digests = new SegmentDigestCache(
      new ReadBudget(options.readBytesPerSecond ?? DEFAULT_READ_BYTES_PER_SECOND),
    );
  }

  /** Starts the rounds (none with an interval of 0). */
  start(): void {
    if (this.options.intervalMs <= 0 || this.stopped) return;
    this.schedule();
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.checkNow().finally(() => {
        if (!this.stopped) this.schedule();
      });
    }, this.options.intervalMs);
    this.timer.unref();
  }

  /**
   * No more rounds; a round in progress stops after its current segment. Not awaited: a repair
   * runs inside its log's maintenance chain, which the log's close waits for, and a request to a
   * leader that is going away would hold a shutdown up to its deadline.
   */
  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /**
   * Compares every partition followed here (or those of `topic`, or that one partition) with its
   * leader now, after any round in progress, repairing what differs. Never rejects: what failed is
   * in each check's problems.
   */
  checkNow(filter: { topic?: string; partition?: number } = {}): Promise<PartitionCheck[]> {
    const run = this.round.then(async () => {
      const checks: PartitionCheck[] = [];
      for (const followed of this.host.followed()) {
        if (this.stopped) break;
        if (filter.topic !== undefined && followed.topic !== filter.topic) continue;
        if (filter.partition !== undefined && followed.partition !== filter.partition) continue;
        const check = await this.checkPartition(followed);
        addCheck(this.totals, check);
        checks.push(check);
      }
      return checks;
    });
    this.round = run.catch(() => undefined);
    return run;
  }

  private async checkPartition(followed: FollowedPartition): Promise<PartitionCheck> {
    const { topic, partition, leaderId, log } = followed;
    const check = {
      topic,
      partition,
      leader: leaderId,
      segmentsCompared: 0,
      segmentsDiffering: 0,
      segmentsRepaired: 0,
      bytesRepaired: 0,
      skipped: 0,
      problems: [] as string[],
    };
    if (followed.compacted) {
      check.skipped = log.settledSegments.length;
      return check;
    }
    const ref: SegmentPartitionRef = {
      replicaId: this.host.brokerId,
      topic,
      partition,
      leaderEpoch: followed.leaderEpoch,
    };
    try {
      for (const page of pagesOf(log.settledSegments, ROOTS_PAGE)) {
        if (this.stopped) break;
        const answer = await followed.link.call(
          segmentRootsCommand,
          { ...ref, chunkBytes: this.chunkBytes, baseOffsets: page.map((segment) => segment.baseOffset) },
          { timeoutMs: REQUEST_TIMEOUT_MS },
        );
        for (const pair of pairSegments(page, answer.segments)) {
          if ('skipped' in pair) {
            check.skipped++;
            continue;
          }
          await this.compareSegment(followed, ref, pair.ours, pair.theirs, check);
        }
      }
    } catch (error) {
      // Leadership is moving: the next round compares with the new leader. Not a failure.
      if (error instanceof MemoryStreamerError && LEADERSHIP_MOVING.has(error.codeName)) check.skipped++;
      else check.problems.push(`comparing with leader ${leaderId}: ${(error as Error).message}`);
    }
    if (this.stopped) return check;
    if (check.segmentsDiffering > 0 || check.problems.length > 0)
      this.logger.warn({ ...check, problems: check.problems.join('; ') }, 'anti-entropy check');
    return check;
  }

  private async compareSegment(
    followed: FollowedPartition,
    ref: SegmentPartitionRef,
    segment: Segment,
    theirs: SegmentRoot,
    check: {
      segmentsCompared: number;
      segmentsDiffering: number;
      segmentsRepaired: number;
      bytesRepaired: number;
      problems: string[];
    },
  ): Promise<void> {
    if (this.stopped) return;
    let ours: SegmentDigest;
    try {
      // This replica's own bytes are read again every time: bit rot since the last look is the point.
      ours = await this.digests.digest(segment, { chunkBytes: this.chunkBytes, maxAgeMs: 0 });
    } catch (error) {
      // Retention or a truncation removed the segment meanwhile: nothing to compare.
      if (!followed.log.settledSegments.includes(segment)) return;
      throw error;
    }
    check.segmentsCompared++;
    if (!rootsDiffer(ours.root, theirs.root)) return;
    check.segmentsDiffering++;
    const where = {
      topic: followed.topic,
      partition: followed.partition,
      baseOffset: String(segment.baseOffset),
    };
    try {
      const tree = await followed.link.call(
        segmentChunkDigestsCommand,
        { ...ref, chunkBytes: this.chunkBytes, baseOffset: segment.baseOffset },
        { timeoutMs: REQUEST_TIMEOUT_MS },
      );
      if (tree.size !== ours.size || tree.chunkBytes !== ours.chunkBytes || !tree.root.equals(theirs.root))
        throw errorOf('SEGMENT_DIGEST_MISMATCH', "the leader's segment changed between its answers");
      const plans = planRanges(ours.chunks, tree.chunks, tree.size, tree.chunkBytes, this.maxRangeBytes);
      const ranges: RepairRange[] = [];
      for (const plan of plans) {
        const fetched = await followed.link.call(
          segmentRangeCommand,
          { ...ref, baseOffset: segment.baseOffset, position: plan.position, length: plan.length },
          { timeoutMs: REQUEST_TIMEOUT_MS },
        );
        if (!rangeMatches(plan, fetched.bytes, tree.chunks, tree.chunkBytes))
          throw errorOf(
            'SEGMENT_DIGEST_MISMATCH',
            `bytes ${plan.position}+${plan.length} of the leader's segment do not hash to its digest`,
          );
        ranges.push({ position: plan.position, bytes: fetched.bytes });
      }
      const repaired = await followed.log.repairSegment(segment.baseOffset, ranges, {
        root: tree.root,
        chunkBytes: tree.chunkBytes,
      });
      this.digests.forget(segment);
      check.segmentsRepaired++;
      check.bytesRepaired += repaired.bytesRewritten;
      this.logger.warn(
        {
          ...where,
          leader: followed.leaderId,
          ranges: plans.length,
          bytesRewritten: repaired.bytesRewritten,
          bytesChanged: repaired.bytesChanged,
        },
        'segment differed from the leader; repaired from its bytes',
      );
    } catch (error) {
      check.problems.push(`segment ${segment.baseOffset}: ${(error as Error).message}`);
      this.logger.error(
        { ...where, leader: followed.leaderId, reason: (error as Error).message },
        'segment differs from the leader and was not repaired',
      );
    }
  }

  /**
   * PARTITION_VERIFY: checks the replicas of the topic followed here now and, unless `here`, has
   * every other broker holding a replica of it do the same (in parallel); a broker that cannot is
   * listed in `failed`.
   */
  async verify(request: VerifyPartitionRequest): Promise<VerifyPartitionResponse> {
    const replicas = this.host.replicasOf(request.topic);
    if (replicas === undefined) throw errorOf('UNKNOWN_TOPIC', request.topic);
    const filter = {
      topic: request.topic,
      ...(request.partition >= 0 ? { partition: request.partition } : {}),
    };
    const others = request.here ? [] : replicas.filter((id) => id !== this.host.brokerId);
    const [local, ...remote] = await Promise.allSettled([
      this.checkNow(filter),
      ...others.map((brokerId) => {
        const link = this.host.linkTo(brokerId);
        if (link === null) return Promise.reject(new Error('its address is not known'));
        return link.call(
          verifyPartitionCommand,
          { ...request, here: true },
          { timeoutMs: VERIFY_TIMEOUT_MS },
        );
      }),
    ]);
    const response: VerifyPartitionResponse = { results: [], failed: [] };
    if (local!.status === 'fulfilled')
      for (const { topic: _topic, ...check } of local!.value)
        response.results.push({ ...check, broker: this.host.brokerId, problems: [...check.problems] });
    else response.failed.push({ broker: this.host.brokerId, reason: (local!.reason as Error).message });
    remote.forEach((answer, i) => {
      if (answer.status === 'fulfilled') {
        response.results.push(...(answer.value as VerifyPartitionResponse).results);
        response.failed.push(...(answer.value as VerifyPartitionResponse).failed);
      } else response.failed.push({ broker: others[i]!, reason: (answer.reason as Error).message });
    });
    response.results.sort((a, b) => a.partition - b.partition || a.broker - b.broker);
    return response;
  }

  // AntiEntropyRequests: answered for the partitions this broker leads.

  /** The settled segment of a partition led here at the follower's epoch. */
  private ledSegment(
    ref: SegmentPartitionRef,
    baseOffset: bigint,
  ): { segment: Segment | undefined; log: PartitionLog } {
    const log = this.ledLog(ref);
    return { segment: log.settledSegments.find((s) => s.baseOffset === baseOffset), log };
  }

  private ledLog(ref: SegmentPartitionRef): PartitionLog {
    const led = this.host.led(ref.topic, ref.partition);
    if (led === undefined) throw errorOf('NOT_LEADER', `${ref.topic}/${ref.partition}`);
    if (ref.leaderEpoch < led.leaderEpoch)
      throw errorOf(
        'FENCED_LEADER_EPOCH',
        `${ref.topic}/${ref.partition}: epoch ${ref.leaderEpoch} < ${led.leaderEpoch}`,
      );
    if (ref.leaderEpoch > led.leaderEpoch)
      throw errorOf(
        'UNKNOWN_LEADER_EPOCH',
        `${ref.topic}/${ref.partition}: epoch ${ref.leaderEpoch} > ${led.leaderEpoch}`,
      );
    return led.log;
  }

  private checkChunkBytes(chunkBytes: number): void {
    if (chunkBytes < 4096 || chunkBytes > 16 * 1024 * 1024)
      throw errorOf('SEGMENT_RANGE_INVALID', `digest chunks of ${chunkBytes} bytes; 4 KiB to 16 MiB`);
  }

  /** A leader's roots may be up to one interval old (its followers re-read their own). */
  private get leaderMaxAgeMs(): number {
    return Math.max(this.options.intervalMs, 0);
  }

  async segmentRoots(request: SegmentRootsRequest): Promise<SegmentRootsResponse> {
    this.checkChunkBytes(request.chunkBytes);
    const log = this.ledLog(request);
    const settled = new Map(log.settledSegments.map((segment) => [segment.baseOffset, segment]));
    const segments: SegmentRoot[] = [];
    for (const baseOffset of request.baseOffsets) {
      const segment = settled.get(baseOffset);
      if (segment === undefined) {
        segments.push({
          baseOffset,
          error: 'SEGMENT_NOT_FOUND',
          nextOffset: -1n,
          size: -1,
          root: Buffer.alloc(0),
        });
        continue;
      }
      const digest = await this.digests.digest(segment, {
        chunkBytes: request.chunkBytes,
        maxAgeMs: this.leaderMaxAgeMs,
        rootOnly: true,
      });
      segments.push({
        baseOffset,
        error: null,
        nextOffset: digest.nextOffset,
        size: digest.size,
        root: digest.root,
      });
    }
    return { highWatermark: log.highWatermark, chunkBytes: request.chunkBytes, segments };
  }

  async segmentChunkDigests(request: SegmentChunkDigestsRequest): Promise<SegmentChunkDigestsResponse> {
    this.checkChunkBytes(request.chunkBytes);
    const { segment } = this.ledSegment(request, request.baseOffset);
    if (segment === undefined)
      throw errorOf('SEGMENT_NOT_FOUND', `${request.topic}/${request.partition} at ${request.baseOffset}`);
    // Chunk hashes are not cached: read again (only segments that differ somewhere get here).
    const digest = await this.digests.digest(segment, { chunkBytes: request.chunkBytes });
    return {
      nextOffset: digest.nextOffset,
      size: digest.size,
      chunkBytes: digest.chunkBytes,
      root: digest.root,
      chunks: [...digest.chunks],
    };
  }

  async segmentRange(request: SegmentRangeRequest): Promise<SegmentRangeResponse> {
    const { segment } = this.ledSegment(request, request.baseOffset);
    if (segment === undefined)
      throw errorOf('SEGMENT_NOT_FOUND', `${request.topic}/${request.partition} at ${request.baseOffset}`);
    if (request.position + request.length > segment.size)
      throw errorOf(
        'SEGMENT_RANGE_INVALID',
        `${request.position}+${request.length} of a segment of ${segment.size} bytes`,
      );
    const bytes = await segment.read(request.position, request.length);
    return { size: segment.size, bytes };
  }
}
