// What every cluster member runs: a metadata cache kept current (one snapshot, then the watch), a
// campaign for the controller role whenever nobody holds it, and, while this broker is the
// controller, a reconcile after every change. Reconciles never overlap: changes that arrive while
// one runs are folded into one more run after it.
//
// While it is the controller it also takes the other brokers' heartbeats (BROKER_HEARTBEAT) and
// fences a broker silent for the fencing time (liveness/broker-liveness.ts): the fenced broker is
// not live for the reconcile, which elects new leaders for its partitions from their ISRs by
// compare-and-swap, well before its etcd lease would expire. A broker that heartbeats again is
// live again. A broker in a controlled shutdown (it says so in its heartbeats) is not live for
// leadership either, so its partitions move to other ISR members before it stops.

import { MemoryStreamerError } from '../../common/errors.js';
import type {
  BrokerHeartbeatRequest,
  BrokerHeartbeatResponse,
} from '../../protocol/commands/broker-heartbeat-command.js';
import { errorOf } from '../../protocol/error-codes.js';
import type { BrokerSession, ControlPlane } from '../control-plane/control-plane.js';
import { type ControllerInfo, MetadataCache, type MetadataEvent } from '../control-plane/metadata-cache.js';
import { KEYS } from '../control-plane/metadata-keys.js';
import { NO_LEADER, type TopicRecord } from '../control-plane/metadata-records.js';
import { BrokerLiveness } from '../liveness/broker-liveness.js';
import {
  Controller,
  type LeaderChange,
  type NewTopic,
  type ReconcileResult,
  StaleTopicError,
} from './controller.js';
import { DrainedBrokers, encodeDrained } from './drained-brokers.js';
import type { PlannedTopic, ReassignmentTarget, ReassignOptions } from './reassignment.js';

/** How long a drain or an election waits for the metadata to show its leadership moves. */
const SETTLE_TIMEOUT_MS = 10_000;
/** A topic write whose compare-and-swap keeps failing is given up after this many plans. */
const STALE_WRITE_ATTEMPTS = 5;
/** How long a stale topic write waits for the watch to bring the cache up to etcd. */
const STALE_CATCH_UP_MS = 2_000;

export interface DrainResult {
  readonly drained: boolean;
  readonly drainedBrokers: readonly number[];
  readonly moved: LeaderChange[];
  /** Partitions the broker still leads (no other live in-sync replica). */
  readonly stayed: Array<{ topic: string; partition: number }>;
}

export interface ControllerServiceEvents {
  /** This broker won a controller term. */
  onTerm?(term: ControllerInfo): void;
  /** This broker's term ended (lease lost, or another controller was found in its place). */
  onTermEnd?(term: ControllerInfo, reason: string): void;
  onReconcile?(result: ReconcileResult): void;
  /** Metadata changed (the cache is current as of these events). */
  onMetadata?(cache: MetadataCache, events: readonly MetadataEvent[]): void;
  /** A failure the service recovers from by itself (it keeps running). */
  onError?(error: Error): void;
  /** As the controller: brokers fenced (silent for the fencing time), or live again. */
  onFencing?(brokerIds: readonly number[], fenced: boolean): void;
}

/** A broker silent this long is fenced by the controller (and fences itself). */
export const DEFAULT_FENCING_TIME_MS = 300;

export interface ControllerServiceOptions {
  /**
   * How long the controller waits for a broker's heartbeat before it fences it; without it the
   * controller fences nobody itself (a broker leaves when its etcd lease expires).
   */
  readonly fencingTimeMs?: number;
}

/** After a campaign or a reconcile that failed (etcd unreachable, a timeout), the next attempt. */
const CAMPAIGN_RETRY_MS = 200;

export class ControllerService {
  readonly cache = new MetadataCache();
  /** Brokers drained by an operator (passed over in leader elections). */
  readonly drained = new DrainedBrokers();
  private readonly plane: ControlPlane;
  private session: BrokerSession;
  private readonly events: ControllerServiceEvents;
  private controller: Controller | null = null;
  private stopWatch: (() => Promise<void>) | null = null;
  private reconciling: Promise<void> | null = null;
  private dirty = false;
  private campaigning = false;
  private stopped = false;
  /** Called after each change of the cache, and at stop (settle). */
  private readonly cacheListeners = new Set<() => void>();
  readonly fencingTimeMs: number | null;
  /** The brokers' heartbeats, while this broker is the controller. */
  private liveness: BrokerLiveness | null = null;
  private livenessTimer: NodeJS.Timeout | null = null;
  /** This broker is in a controlled shutdown (passed over for leadership by its own term too). */
  private shuttingDown = false;

  private constructor(
    plane: ControlPlane,
    session: BrokerSession,
    events: ControllerServiceEvents,
    options: ControllerServiceOptions,
  ) {
    this.plane = plane;
    this.session = session;
    this.events = events;
    this.fencingTimeMs = options.fencingTimeMs ?? null;
  }

  static async start(
    plane: ControlPlane,
    session: BrokerSession,
    events: ControllerServiceEvents = {},
    options: ControllerServiceOptions = {},
  ): Promise<ControllerService> {
    const service = new ControllerService(plane, session, events, options);
    await service.resync();
    session.onLost((error) => service.endTerm(`lease lost: ${error.message}`));
    return service;
  }

  /**
   * The broker registered again under a new lease after losing its old one (etcd unreachable
   * longer than the lease): campaigns run under the new lease from now on, and a controller
   * missing meanwhile is campaigned for at once.
   */
  adoptSession(session: BrokerSession): void {
    this.session = session;
    session.onLost((error) => this.endTerm(`lease lost: ${error.message}`));
    void this.afterChange();
  }

  /** The term this broker holds, or null. */
  get term(): ControllerInfo | null {
    return this.controller?.term ?? null;
  }

  /** Creates a topic; only the controller can (NOT_CONTROLLER elsewhere: ask the controller). */
  async createTopic(topic: NewTopic): Promise<TopicRecord> {
    const controller = this.controller;
    if (controller === null)
      throw errorOf('NOT_CONTROLLER', `broker ${this.session.brokerId} is not the controller`);
    const record = await this.guard(controller, () => controller.createTopic(this.cache, topic));
    this.scheduleReconcile();
    return record;
  }

  /** Alters a topic (configuration, partition growth); only the controller can. */
  async alterTopic(
    name: string,
    change: { partitions?: number; config?: Readonly<Record<string, unknown>> },
  ): Promise<TopicRecord> {
    const controller = this.requireController();
    const record = await this.guard(controller, () =>
      this.onFreshTopics(() => controller.alterTopic(this.cache, name, change)),
    );
    this.scheduleReconcile();
    return record;
  }

  /** Deletes a topic from the cluster; only the controller can. */
  async deleteTopic(name: string): Promise<void> {
    const controller = this.requireController();
    await this.guard(controller, () => controller.deleteTopic(name));
  }

  /**
   * Starts reassignments (refused whole when the plan is bad); reconciles finish them. Answers
   * as soon as this broker's cache holds the write (or after SETTLE_TIMEOUT_MS): etcd
   * acknowledges the write before the watch brings it here, and `reassignments()` answers from
   * the cache, so a client polling the reassignments right after this answer would otherwise find
   * none under way and take its reassignment for finished while it had not even started
   * (`partition reassign --wait` then reported the replicas of before as the result).
   */
  async reassign(
    plan: readonly ReassignmentTarget[],
    options: ReassignOptions = {},
  ): Promise<PlannedTopic[]> {
    const controller = this.requireController();
    const { planned, revision } = await this.guard(controller, () =>
      this.onFreshTopics(() => controller.reassign(this.cache, plan, options)),
    );
    this.scheduleReconcile();
    await this.settle(() => this.cache.revision >= revision);
    return planned;
  }

  /** The reassignments under way, as the metadata shows them. */
  reassignments(): Array<{
    topic: string;
    partition: number;
    replicas: number[];
    target: number[];
    isr: number[];
    leader: number;
  }> {
    return this.cache.topics().flatMap(({ value: topic }) =>
      Object.entries(topic.reassigning ?? {})
        .map(([key, target]) => {
          const partition = Number(key);
          const state = this.cache.partition(topic.name, partition)?.value;
          return {
            topic: topic.name,
            partition,
            replicas: [...topic.assignment[partition]!],
            target: [...target],
            isr: [...(state?.isr ?? [])],
            leader: state?.leader ?? NO_LEADER,
          };
        })
        .sort((a, b) => a.partition - b.partition),
    );
  }

  /**
   * Drains a broker (or ends its drain): recorded in the control plane, then the reconcile moves
   * leadership off it; answers once every partition it led has moved or cannot (no other live
   * in-sync replica), or after SETTLE_TIMEOUT_MS.
   */
  async drain(brokerId: number, cancel: boolean): Promise<DrainResult> {
    const controller = this.requireController();
    if (!cancel && this.cache.broker(brokerId) === undefined)
      throw errorOf(
        'UNKNOWN_BROKER',
        `broker ${brokerId}; the live brokers are ${this.cache
          .brokers()
          .map((b) => b.brokerId)
          .join(', ')}`,
      );
    const before = this.ledBy(brokerId);
    for (let attempt = 0; ; attempt++) {
      const current = this.drained;
      const next = new Set(current.ids);
      if (cancel) next.delete(brokerId);
      else next.add(brokerId);
      const value = encodeDrained(next);
      const written = await this.guard(controller, () =>
        this.plane.writeFenced(controller.term, KEYS.drainedBrokers, current.modRevision, value),
      );
      if (written) {
        // The watch brings the new revision; until then a second drain retries on a fresh read.
        this.drained.set([...next], current.modRevision);
        break;
      }
      // Another drain changed the set meanwhile: read it again and retry.
      if (attempt >= 3) throw errorOf('INVALID_REQUEST', 'the drained brokers changed meanwhile; try again');
      const fresh = await this.plane.read(KEYS.drainedBrokers);
      this.drained.apply([
        {
          type: fresh.value === null ? 'delete' : 'put',
          key: KEYS.drainedBrokers,
          value: fresh.value ?? Buffer.alloc(0),
          createRevision: 0n,
          modRevision: fresh.modRevision,
        },
      ]);
    }
    if (cancel) return { drained: false, drainedBrokers: [...this.drained.ids], moved: [], stayed: [] };
    this.scheduleReconcile();
    const notLive = this.notLive();
    const movable = (p: { topic: string; partition: number }) => {
      const state = this.cache.partition(p.topic, p.partition)?.value;
      return (
        state?.isr.some(
          (id) =>
            id !== brokerId &&
            !this.drained.ids.has(id) &&
            !notLive.has(id) &&
            this.cache.broker(id) !== undefined,
        ) === true
      );
    };
    await this.settle(() => this.ledBy(brokerId).every((p) => !movable(p)));
    const moved: LeaderChange[] = [];
    for (const p of before) {
      const state = this.cache.partition(p.topic, p.partition)?.value;
      if (state !== undefined && state.leader !== brokerId)
        moved.push({ ...p, from: brokerId, to: state.leader, leaderEpoch: state.leaderEpoch });
    }
    return {
      drained: true,
      drainedBrokers: [...this.drained.ids],
      moved,
      stayed: this.ledBy(brokerId),
    };
  }

  /** Preferred-leader election; answers once the metadata shows the moves (or after SETTLE_TIMEOUT_MS). */
  async electLeaders(topics?: readonly string[]): Promise<LeaderChange[]> {
    const controller = this.requireController();
    const moved = await this.guard(controller, () =>
      controller.electPreferredLeaders(this.cache, this.drained.ids, topics, this.notLive()),
    );
    await this.settle(() =>
      moved.every(
        (move) =>
          (this.cache.partition(move.topic, move.partition)?.value.leaderEpoch ?? -1) >= move.leaderEpoch,
      ),
    );
    return moved;
  }

  /**
   * A broker's heartbeat (BROKER_HEARTBEAT), on the controller: the broker is live for the
   * fencing time from now. NOT_CONTROLLER when this broker does not hold the term the heartbeat
   * names (or a newer one); BROKER_SESSION_UNKNOWN when the registration it names is not the one
   * the metadata shows. An answer to a broker that was fenced waits for the reconcile that counts
   * it live again, so that the revision it names covers what changed while it was fenced.
   */
  async heartbeat(request: BrokerHeartbeatRequest): Promise<BrokerHeartbeatResponse> {
    const controller = this.requireController();
    if (request.controllerEpoch > controller.term.epoch)
      throw errorOf(
        'NOT_CONTROLLER',
        `broker ${this.session.brokerId} does not hold controller epoch ${request.controllerEpoch}`,
      );
    const answer = () => ({
      controllerEpoch: controller.term.epoch,
      fencingTimeMs: this.fencingTimeMs ?? 0,
      metadataRevision: this.cache.revision,
    });
    const liveness = this.liveness;
    if (liveness === null) return answer();
    const now = Date.now();
    const wasFenced = liveness.fenced().has(request.brokerId);
    const wasShuttingDown = liveness.shuttingDown().has(request.brokerId);
    let known = liveness.heard(request.brokerId, request.startedAtMs, now, request.shuttingDown);
    if (!known) {
      liveness.sync(this.cache.brokers(), now);
      known = liveness.heard(request.brokerId, request.startedAtMs, now, request.shuttingDown);
    }
    if (!known)
      throw errorOf(
        'BROKER_SESSION_UNKNOWN',
        `broker ${request.brokerId} started at ${request.startedAtMs} is not the registration the controller knows`,
      );
    if (wasFenced || wasShuttingDown !== request.shuttingDown) {
      if (wasFenced) this.events.onFencing?.([request.brokerId], false);
      this.scheduleReconcile();
      if (wasFenced) await this.reconciling;
    }
    return answer();
  }

  /**
   * A controlled shutdown of this broker begins: while it is the controller, its own partitions
   * move to other ISR members (the heartbeats tell any later controller the same).
   */
  beginShutdown(): void {
    this.shuttingDown = true;
    this.liveness?.setShuttingDown(this.session.brokerId, true);
    this.scheduleReconcile();
  }

  /**
   * The last step of a controlled shutdown on the controller: the term is resigned (a standby
   * campaigns at once) and this broker does not campaign again.
   */
  async resignForShutdown(): Promise<void> {
    this.shuttingDown = true;
    const term = this.term;
    if (term === null) return;
    await this.reconciling;
    this.endTerm('controlled shutdown');
    await this.plane.resign(term).catch((error: Error) => this.events.onError?.(error));
  }

  /** Brokers fenced by this controller now (empty elsewhere). */
  fencedBrokers(): ReadonlySet<number> {
    return this.liveness?.fenced() ?? new Set();
  }

  /** Registered brokers not live for leadership: fenced, or in a controlled shutdown. */
  private notLive(): ReadonlySet<number> {
    const liveness = this.liveness;
    if (liveness === null) return new Set();
    return new Set([...liveness.fenced(), ...liveness.shuttingDown()]);
  }

  /** A new term: every registered broker gets one fencing time to be heard from. */
  private startLiveness(): void {
    this.stopLiveness();
    if (this.fencingTimeMs === null) return;
    const liveness = new BrokerLiveness(this.fencingTimeMs, this.session.brokerId);
    liveness.sync(this.cache.brokers(), Date.now());
    if (this.shuttingDown) liveness.setShuttingDown(this.session.brokerId, true);
    this.liveness = liveness;
    // Checked a tenth of the fencing time apart: a silent broker is fenced at most that late.
    const everyMs = Math.max(5, Math.min(50, Math.floor(liveness.fencingTimeMs / 10)));
    this.livenessTimer = setInterval(() => {
      const change = liveness.check(Date.now());
      if (change.fenced.length > 0) {
        this.events.onFencing?.(change.fenced, true);
        this.scheduleReconcile();
      }
    }, everyMs);
    this.livenessTimer.unref();
  }

  private stopLiveness(): void {
    if (this.livenessTimer !== null) clearInterval(this.livenessTimer);
    this.livenessTimer = null;
    this.liveness = null;
  }

  /** Partitions `brokerId` leads, as the metadata says. */
  private ledBy(brokerId: number): Array<{ topic: string; partition: number }> {
    return this.cache
      .topics()
      .flatMap(({ value: topic }) =>
        Array.from({ length: topic.partitions }, (_, partition) => ({ topic: topic.name, partition })).filter(
          (p) => this.cache.partition(p.topic, p.partition)?.value.leader === brokerId,
        ),
      );
  }

  /**
   * Runs a topic write planned from the cache; when its compare-and-swap finds a newer record
   * (the watch had not brought it yet: a reassignment right after another, a reconcile finishing
   * one), waits until the cache holds what etcd holds and plans again.
   */
  private async onFreshTopics<T>(write: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await write();
      } catch (error) {
        if (!(error instanceof StaleTopicError)) throw error;
        if (attempt >= STALE_WRITE_ATTEMPTS)
          throw errorOf('INVALID_REQUEST', `${error.message} ${attempt} times; try again`);
        const current = await Promise.all(
          error.topics.map(async (name) => ({ name, ...(await this.plane.read(KEYS.topic(name))) })),
        );
        await this.settle(
          () =>
            current.every(
              ({ name, modRevision }) => (this.cache.topic(name)?.modRevision ?? 0n) >= modRevision,
            ),
          STALE_CATCH_UP_MS,
        );
      }
    }
  }

  /**
   * Waits until `done()`, checked now and after each change the watch brings (no polling delay:
   * an answer waiting on it goes out as soon as the cache holds what it waits for), or for
   * `timeoutMs`, or until stopped.
   */
  private async settle(done: () => boolean, timeoutMs = SETTLE_TIMEOUT_MS): Promise<void> {
    if (done() || this.stopped) return;
    await new Promise<void>((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        this.cacheListeners.delete(check);
        resolve();
      };
      const check = () => {
        if (done() || this.stopped) finish();
      };
      const timer = setTimeout(finish, timeoutMs);
      this.cacheListeners.add(check);
    });
  }

  private requireController(): Controller {
    const controller = this.controller;
    if (controller === null)
      throw errorOf('NOT_CONTROLLER', `broker ${this.session.brokerId} is not the controller`);
    return controller;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const listener of [...this.cacheListeners]) listener();
    this.stopLiveness();
    await this.stopWatch?.();
    this.stopWatch = null;
    await this.reconciling;
    const term = this.term;
    this.controller = null;
    if (term !== null) await this.plane.resign(term).catch(() => undefined);
  }

  /** Loads a fresh snapshot and watches from it (at start, and when a watch cannot continue). */
  private async resync(): Promise<void> {
    await this.stopWatch?.();
    const snapshot = await this.plane.snapshot();
    this.cache.load(snapshot.events, snapshot.revision);
    this.drained.load(snapshot.events);
    this.stopWatch = await this.plane.watch(
      this.cache.revision,
      (events) => this.onEvents(events),
      (error) => {
        this.events.onError?.(error);
        if (!this.stopped) void this.resync().catch((failure: Error) => this.events.onError?.(failure));
      },
    );
    this.events.onMetadata?.(this.cache, snapshot.events);
    for (const listener of [...this.cacheListeners]) listener();
    await this.afterChange();
  }

  private onEvents(events: MetadataEvent[]): void {
    this.cache.apply(events);
    this.drained.apply(events);
    this.liveness?.sync(this.cache.brokers(), Date.now());
    this.events.onMetadata?.(this.cache, events);
    for (const listener of [...this.cacheListeners]) listener();
    void this.afterChange();
  }

  private async afterChange(): Promise<void> {
    if (this.stopped) return;
    const current = this.cache.controller;
    const mine = this.controller;
    if (mine !== null && (current === null || current.epoch !== mine.term.epoch))
      this.endTerm(current === null ? 'controller key gone' : `broker ${current.brokerId} is controller now`);
    // A broker in a controlled shutdown leaves the controller role to the others.
    if (current === null && !this.campaigning && !this.session.lost && !this.shuttingDown) {
      this.campaigning = true;
      try {
        const term = await this.plane.campaign(this.session);
        if (term !== null && !this.stopped) {
          this.controller = new Controller(this.plane, term);
          this.startLiveness();
          this.events.onTerm?.(term);
        }
      } catch (error) {
        this.events.onError?.(error as Error);
        // Nothing else may ever wake this broker to campaign again (a quiet cluster sends no more
        // events): try again shortly while no controller is known.
        setTimeout(() => void this.afterChange(), CAMPAIGN_RETRY_MS).unref();
      } finally {
        this.campaigning = false;
      }
    }
    this.scheduleReconcile();
  }

  private scheduleReconcile(): void {
    if (this.controller === null || this.stopped) return;
    if (this.reconciling !== null) {
      this.dirty = true;
      return;
    }
    this.reconciling = (async () => {
      do {
        this.dirty = false;
        const controller = this.controller;
        if (controller === null) break;
        try {
          const result = await this.guard(controller, () =>
            controller.reconcile(this.cache, this.drained.ids, this.notLive()),
          );
          this.events.onReconcile?.(result);
        } catch (error) {
          if (!(error instanceof MemoryStreamerError && error.codeName === 'NOT_CONTROLLER')) {
            this.events.onError?.(error as Error);
            // A reconcile that could not write (etcd slow or away) is made again: no event may
            // come to trigger it in a quiet cluster, and partitions would keep a dead leader.
            setTimeout(() => this.scheduleReconcile(), CAMPAIGN_RETRY_MS).unref();
          }
        }
      } while (this.dirty && !this.stopped);
      this.reconciling = null;
    })();
  }

  /** Runs a controller write; NOT_CONTROLLER ends the term here before it is rethrown. */
  private async guard<T>(controller: Controller, write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (error) {
      if (
        error instanceof MemoryStreamerError &&
        error.codeName === 'NOT_CONTROLLER' &&
        this.controller === controller
      )
        this.endTerm(error.message);
      throw error;
    }
  }

  private endTerm(reason: string): void {
    const controller = this.controller;
    if (controller === null) return;
    this.controller = null;
    this.stopLiveness();
    this.events.onTermEnd?.(controller.term, reason);
  }
}
