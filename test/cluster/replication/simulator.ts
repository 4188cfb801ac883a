// A seeded, deterministic simulator of one replicated partition: 3–5 replicas driven by the real
// LeaderState / FollowerState / LeaderEpochCache, a controller that elects from the ISR and bumps
// epochs (as etcd would, with compare-and-swap on the ISR version), a network that delays, reorders
// and loses messages, disks that lose their unsynced suffix on a crash, restarts, and producers
// with acks=all and acks=1. A checker (checker.ts) watches every step. Same seed, same run.

import {
  type FollowerConfig,
  type FollowerStart,
  FollowerState,
} from '../../../src/cluster/replication/follower-state.js';
import { LeaderEpochCache } from '../../../src/cluster/replication/leader-epoch-cache.js';
import {
  type Acks,
  type LeaderConfig,
  type LeaderStart,
  LeaderState,
} from '../../../src/cluster/replication/leader-state.js';
import type {
  EpochAnswer,
  EpochQuery,
  FollowerAction,
  LeaderAction,
  ReplicaBatch,
  ReplicaFetchRequest,
  ReplicaFetchResponse,
} from '../../../src/cluster/replication/messages.js';
import { errorOf } from '../../../src/protocol/error-codes.js';
import { type LogEntry, ReplicationChecker } from './checker.js';

export type FollowerFactory = (
  config: FollowerConfig,
  cache: LeaderEpochCache,
  start: FollowerStart,
) => FollowerState;
export type LeaderFactory = (
  config: LeaderConfig,
  cache: LeaderEpochCache,
  start: LeaderStart,
) => { leader: LeaderState; actions: LeaderAction[] };

export interface SimulationOptions {
  readonly seed: number;
  readonly replicas: number;
  readonly minInsyncReplicas: number;
  /** Simulated milliseconds of faults and traffic, followed by a healing phase. */
  readonly durationMs: number;
  readonly lossRate: number;
  readonly maxDelayMs: number;
  /** Per replica and per 5 ms tick. */
  readonly crashRate: number;
  /** Per 5 ms tick: the controller moves leadership to another ISR member. */
  readonly leaderMoveRate: number;
  /**
   * `always`: positions are locally stable ends, and a crash is a power loss (the unsynced suffix
   * is gone). `interval`: positions are log ends, and a crash is a process kill (the page cache
   * keeps what was written), the case where that policy still promises every acknowledged write.
   */
  readonly durability: 'always' | 'interval';
  /** Deliberately wrong parts, for the tests that prove the checker catches them. */
  readonly follower?: FollowerFactory;
  readonly leader?: LeaderFactory;
  readonly election?: 'in-sync' | 'any-live-replica';
  /** Receives one line per notable event (to explain a failing seed). */
  readonly trace?: (line: string) => void;
}

export const DEFAULT_SIMULATION: Omit<SimulationOptions, 'seed'> = {
  replicas: 3,
  minInsyncReplicas: 2,
  durationMs: 400,
  lossRate: 0.05,
  maxDelayMs: 8,
  crashRate: 0.01,
  leaderMoveRate: 0.01,
  durability: 'always',
};

export interface SimulationResult {
  readonly seed: number;
  readonly violations: readonly string[];
  readonly stats: {
    produced: number;
    ackedAll: number;
    ackedOne: number;
    crashes: number;
    elections: number;
    committed: number;
    isrChanges: number;
    /** 1 when, after healing, every replica holds the leader's whole log and the high watermark is its end. */
    converged: number;
  };
}

const TICK_MS = 5;
const HEAL_MS = 1000;
const LEASE_MS = 15;

/** mulberry32: small, fast, seeded. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface PartitionState {
  readonly leader: number | null;
  readonly epoch: number;
  readonly isr: readonly number[];
  readonly isrVersion: number;
}

type Message =
  | { kind: 'epoch-query'; from: number; session: number; requestId: number; query: EpochQuery }
  | { kind: 'epoch-answer'; session: number; requestId: number; answer: EpochAnswer }
  | { kind: 'fetch'; from: number; session: number; requestId: number; request: ReplicaFetchRequest }
  | { kind: 'fetch-response'; session: number; requestId: number; response: ReplicaFetchResponse }
  | { kind: 'produce'; requestId: number; acks: Acks; value: number }
  | { kind: 'metadata'; state: PartitionState; refresh: boolean }
  | { kind: 'isr-result'; state: PartitionState };

interface Delivery {
  readonly at: number;
  readonly seq: number;
  readonly to: number;
  readonly incarnation: number;
  readonly message: Message;
}

type Role =
  | { kind: 'none' }
  | { kind: 'leader'; state: LeaderState }
  | { kind: 'follower'; state: FollowerState; session: number };

interface SimBroker {
  readonly id: number;
  alive: boolean;
  incarnation: number;
  /** The disk: entries [0, stable) survive a crash, the rest is lost. */
  log: LogEntry[];
  stable: number;
  highWatermark: number;
  highWatermarkCheckpoint: number;
  epochCheckpoint: Buffer | null;
  cache: LeaderEpochCache;
  known: PartitionState | null;
  role: Role;
  nextSyncAt: number;
  /** acks=all requests waiting in the leader, by request id. */
  waiting: Map<number, { value: number; offset: number; acks: Acks }>;
}

export function simulate(options: SimulationOptions): SimulationResult {
  return new Simulation(options).run();
}

class Simulation {
  private readonly random: () => number;
  private readonly options: SimulationOptions;
  private readonly brokers: SimBroker[] = [];
  private readonly checker = new ReplicationChecker();
  private queue: Delivery[] = [];
  private seq = 0;
  private now = 0;
  private healing = false;
  private controller: PartitionState;
  private nextSession = 1;
  private nextValue = 1;
  private nextProduceId = 1;
  private readonly stats = {
    produced: 0,
    ackedAll: 0,
    ackedOne: 0,
    crashes: 0,
    elections: 0,
    committed: 0,
    isrChanges: 0,
    converged: 0,
  };
  /** Produce requests not answered yet, by request id (the producer's side). */
  private readonly producing = new Map<number, { value: number; acks: Acks }>();

  constructor(options: SimulationOptions) {
    this.options = options;
    this.random = prng(options.seed);
    const ids = Array.from({ length: options.replicas }, (_, index) => index + 1);
    for (const id of ids)
      this.brokers.push({
        id,
        alive: true,
        incarnation: 0,
        log: [],
        stable: 0,
        highWatermark: 0,
        highWatermarkCheckpoint: 0,
        epochCheckpoint: null,
        cache: new LeaderEpochCache(),
        known: null,
        role: { kind: 'none' },
        nextSyncAt: this.between(1, 12),
        waiting: new Map(),
      });
    this.controller = { leader: 1, epoch: 1, isr: ids, isrVersion: 1 };
    this.stats.elections++;
    for (const broker of this.brokers) this.sendMetadata(broker, false);
  }

  run(): SimulationResult {
    const end = this.options.durationMs + HEAL_MS;
    let nextTick = 0;
    while (this.now <= end && this.checker.violations.length === 0) {
      if (!this.healing && this.now >= this.options.durationMs) this.heal();
      this.deliverDue();
      if (this.now === nextTick) {
        this.tick();
        nextTick += TICK_MS;
        // Healed and converged: nothing more can happen but idle fetches.
        if (this.healing && this.now % (TICK_MS * 10) === 0 && this.converged()) break;
      }
      // Jump to the next moment anything happens.
      let next = nextTick;
      for (const delivery of this.queue) if (delivery.at < next) next = delivery.at;
      for (const timer of this.timers) if (timer.at < next) next = timer.at;
      this.now = Math.max(next, this.now + 1);
    }
    if (this.checker.violations.length === 0) this.finalCheck();
    this.stats.committed = this.checker.committedLength;
    return { seed: this.options.seed, violations: this.checker.violations, stats: { ...this.stats } };
  }

  // ---- time and faults ----

  private tick(): void {
    if (!this.healing) {
      for (const broker of this.brokers)
        if (broker.alive && this.random() < this.options.crashRate) this.crash(broker);
      if (this.random() < this.options.leaderMoveRate) this.moveLeader();
      if (this.random() < 0.6) this.produce();
    }
    for (const broker of this.brokers) {
      if (!broker.alive) continue;
      if (this.now >= broker.nextSyncAt) this.sync(broker);
      const { role } = broker;
      if (role.kind === 'leader') this.runLeaderActions(broker, role.state.tick(this.now));
      else if (role.kind === 'follower') this.runFollowerActions(broker, role.state.poll(this.now));
    }
  }

  private heal(): void {
    this.healing = true;
    for (const broker of this.brokers) if (!broker.alive) this.restart(broker);
  }

  private sync(broker: SimBroker): void {
    broker.nextSyncAt = this.now + this.between(2, 12);
    if (broker.stable === broker.log.length) return;
    broker.stable = broker.log.length;
    broker.highWatermarkCheckpoint = Math.min(broker.highWatermark, broker.stable);
    const { role } = broker;
    if (role.kind === 'leader')
      this.runLeaderActions(
        broker,
        role.state.onLocalProgress({
          logEndOffset: BigInt(broker.log.length),
          localEnd: this.localEnd(broker),
        }),
      );
    else if (role.kind === 'follower') role.state.onLocalStable(BigInt(broker.stable));
  }

  private log(line: string): void {
    this.options.trace?.(`${this.now} ${line}`);
  }

  private crash(broker: SimBroker): void {
    this.log(`crash ${broker.id} log ${broker.log.length} → ${broker.stable}`);
    this.stats.crashes++;
    broker.alive = false;
    broker.incarnation++;
    if (this.options.durability === 'always')
      broker.log.length = broker.stable; // power loss: unsynced data is gone
    else broker.stable = broker.log.length; // process kill: the page cache keeps every write
    broker.role = { kind: 'none' };
    broker.waiting.clear();
    broker.known = null;
    const incarnation = broker.incarnation;
    // The controller notices when the broker's lease expires, unless it is back by then.
    this.schedule(LEASE_MS, () => {
      if (!broker.alive && broker.incarnation === incarnation) this.controllerLostBroker(broker.id);
    });
    this.schedule(this.between(5, 60), () => {
      if (!broker.alive && !this.healing) this.restart(broker);
    });
  }

  private restart(broker: SimBroker): void {
    this.log(`restart ${broker.id} log ${broker.log.length}`);
    broker.alive = true;
    broker.incarnation++;
    // Recovery: the checkpoint, cut to the recovered log, completed from the batches' own epochs.
    broker.cache =
      broker.epochCheckpoint === null
        ? new LeaderEpochCache()
        : LeaderEpochCache.decode(broker.epochCheckpoint);
    broker.cache.truncateFromEnd(BigInt(broker.log.length));
    broker.log.forEach((entry, offset) => {
      if (entry.epoch > broker.cache.latestEpoch) broker.cache.assign(entry.epoch, BigInt(offset));
    });
    broker.highWatermark = Math.min(broker.highWatermarkCheckpoint, broker.log.length);
    broker.nextSyncAt = this.now + this.between(2, 12);
    this.controllerBrokerRestarted(broker.id);
    this.sendMetadata(broker, false);
  }

  // ---- the controller (etcd): the one writer of leader, epoch and ISR ----

  private controllerLostBroker(id: number): void {
    const state = this.controller;
    if (state.leader === id) this.elect([id]);
    else if (state.isr.includes(id) && state.isr.length > 1)
      this.commit({
        ...state,
        isr: state.isr.filter((member) => member !== id),
        isrVersion: state.isrVersion + 1,
      });
  }

  private controllerBrokerRestarted(id: number): void {
    const state = this.controller;
    // A restarted broker lost its leader state: lead again under a new epoch, or let another lead.
    if (state.leader === id || state.leader === null) this.elect([]);
  }

  private moveLeader(): void {
    const state = this.controller;
    if (state.leader === null) return;
    const candidates = state.isr.filter((id) => id !== state.leader && this.broker(id).alive);
    if (candidates.length === 0) return;
    this.stats.elections++;
    this.commit({
      ...state,
      leader: this.pick(candidates),
      epoch: state.epoch + 1,
      isrVersion: state.isrVersion + 1,
    });
  }

  private elect(excluded: readonly number[]): void {
    const state = this.controller;
    const live = (id: number) => this.broker(id).alive && !excluded.includes(id);
    const inSync = state.isr.filter(live);
    if (this.options.election === 'any-live-replica') {
      const anyLive = this.brokers.map((broker) => broker.id).filter(live);
      if (anyLive.length === 0) {
        this.commit({ ...state, leader: null });
        return;
      }
      const leader = this.pick(anyLive);
      this.stats.elections++;
      const isr = inSync.includes(leader) ? inSync : [leader];
      this.commit({ leader, epoch: state.epoch + 1, isr, isrVersion: state.isrVersion + 1 });
      return;
    }
    if (inSync.length === 0) {
      // Offline until an ISR member is back: the ISR keeps the dead members it had.
      if (state.leader !== null) this.commit({ ...state, leader: null, epoch: state.epoch + 1 });
      return;
    }
    this.stats.elections++;
    const isr = state.isr.filter((id) => !excluded.includes(id));
    this.commit({ leader: this.pick(inSync), epoch: state.epoch + 1, isr, isrVersion: state.isrVersion + 1 });
  }

  private proposeIsr(from: number, proposal: Extract<LeaderAction, { type: 'propose-isr' }>): void {
    const state = this.controller;
    if (state.leader !== from || state.epoch !== proposal.leaderEpoch) return;
    if (state.isrVersion === proposal.isrVersion && proposal.isr.includes(from)) {
      this.stats.isrChanges++;
      this.commit({ ...state, isr: [...proposal.isr], isrVersion: state.isrVersion + 1 });
    }
    // Accepted or not, the leader hears the ISR as it now stands.
    this.send(from, { kind: 'isr-result', state: this.controller });
  }

  private commit(state: PartitionState): void {
    this.log(`controller ${JSON.stringify(state)}`);
    this.controller = state;
    this.checker.onControllerState(state.epoch, state.leader);
    for (const broker of this.brokers) if (broker.alive) this.sendMetadata(broker, false);
  }

  private sendMetadata(broker: SimBroker, refresh: boolean): void {
    // Watches are reliable (never lost) but late.
    this.send(broker.id, { kind: 'metadata', state: this.controller, refresh }, true);
  }

  // ---- a broker applying what the controller wrote ----

  private applyMetadata(broker: SimBroker, state: PartitionState, refresh: boolean): void {
    const known = broker.known;
    const newer = known === null || state.epoch > known.epoch;
    if (!newer) {
      if (state.epoch < known.epoch) return;
      if (broker.role.kind === 'leader' && state.isrVersion > known.isrVersion)
        this.runLeaderActions(broker, broker.role.state.applyIsr(state.isr, state.isrVersion, this.now));
      broker.known = state.isrVersion > known.isrVersion ? state : known;
      // A stopped follower asked for metadata and nothing changed: try this leader again.
      if (refresh && broker.role.kind === 'follower' && broker.role.state.phase === 'stopped')
        this.becomeFollower(broker, state);
      return;
    }
    broker.known = state;
    if (state.leader === broker.id) this.becomeLeader(broker, state);
    else if (state.leader !== null) this.becomeFollower(broker, state);
    else this.resign(broker);
  }

  private resign(broker: SimBroker): void {
    if (broker.role.kind === 'leader') this.runLeaderActions(broker, broker.role.state.resign());
    broker.role = { kind: 'none' };
  }

  private becomeLeader(broker: SimBroker, state: PartitionState): void {
    this.resign(broker);
    this.log(`${broker.id} leads epoch ${state.epoch}, log ${broker.log.length} stable ${broker.stable}`);
    this.checker.onBecomeLeader(broker.id, state.epoch, broker.log);
    const config: LeaderConfig = {
      brokerId: broker.id,
      leaderEpoch: state.epoch,
      replicas: this.brokers.map((b) => b.id),
      isr: state.isr,
      isrVersion: state.isrVersion,
      replicaLagTimeMs: 30,
      minInsyncReplicas: this.options.minInsyncReplicas,
      isrProposalRetryMs: 20,
    };
    const start: LeaderStart = {
      logStartOffset: 0n,
      logEndOffset: BigInt(broker.log.length),
      localEnd: this.localEnd(broker),
      highWatermark: BigInt(broker.highWatermark),
      nowMs: this.now,
    };
    const { leader, actions } = (this.options.leader ?? LeaderState.become)(config, broker.cache, start);
    broker.role = { kind: 'leader', state: leader };
    this.runLeaderActions(broker, actions);
  }

  private becomeFollower(broker: SimBroker, state: PartitionState): void {
    this.resign(broker);
    if (state.leader === null) return;
    this.log(`${broker.id} follows ${state.leader} in epoch ${state.epoch}, log ${broker.log.length}`);
    const config: FollowerConfig = {
      brokerId: broker.id,
      leaderId: state.leader,
      leaderEpoch: state.epoch,
      reportStableOffset: this.options.durability === 'always',
      requestTimeoutMs: 20,
      idleFetchBackoffMs: 3,
      errorBackoffMs: 5,
    };
    const start: FollowerStart = {
      logEndOffset: BigInt(broker.log.length),
      stableOffset: BigInt(broker.stable),
      highWatermark: BigInt(broker.highWatermark),
      nowMs: this.now,
    };
    const follower = (this.options.follower ?? ((c, cache, s) => new FollowerState(c, cache, s)))(
      config,
      broker.cache,
      start,
    );
    broker.role = { kind: 'follower', state: follower, session: this.nextSession++ };
    this.runFollowerActions(broker, follower.poll(this.now));
  }

  // ---- actions ----

  private runLeaderActions(broker: SimBroker, actions: readonly LeaderAction[]): void {
    for (const action of actions) {
      switch (action.type) {
        case 'high-watermark': {
          broker.highWatermark = Number(action.highWatermark);
          const epoch = broker.role.kind === 'leader' ? broker.role.state.leaderEpoch : -1;
          this.log(`${broker.id} high watermark ${broker.highWatermark} (epoch ${epoch})`);
          this.checker.onLeaderHighWatermark(broker.id, epoch, broker.highWatermark, broker.log);
          break;
        }
        case 'write-epoch-checkpoint':
          broker.epochCheckpoint = action.bytes;
          break;
        case 'propose-isr':
          this.schedule(this.delay(), () => this.proposeIsr(broker.id, action), true);
          break;
        case 'complete-produce': {
          const request = broker.waiting.get(action.requestId);
          if (request === undefined) break;
          broker.waiting.delete(action.requestId);
          if (action.error === null) this.checker.onAckedAll(request.value, request.offset);
          this.reply(action.requestId, request.value, action.error === null);
          break;
        }
      }
    }
  }

  private runFollowerActions(broker: SimBroker, actions: readonly FollowerAction[]): void {
    const role = broker.role;
    if (role.kind !== 'follower') return;
    for (const action of actions) {
      switch (action.type) {
        case 'high-watermark':
          broker.highWatermark = Number(action.highWatermark);
          this.checker.onFollowerHighWatermark(broker.id, broker.highWatermark, broker.log);
          break;
        case 'write-epoch-checkpoint':
          broker.epochCheckpoint = action.bytes;
          break;
        case 'truncate':
          this.log(`${broker.id} truncates ${broker.log.length} → ${action.offset}`);
          broker.log.length = Math.min(broker.log.length, Number(action.offset));
          broker.stable = Math.min(broker.stable, broker.log.length);
          broker.highWatermark = Math.min(broker.highWatermark, broker.log.length);
          broker.highWatermarkCheckpoint = Math.min(broker.highWatermarkCheckpoint, broker.log.length);
          break;
        case 'append': {
          const { batch } = action;
          if (Number(batch.baseOffset) !== broker.log.length)
            this.checker.violation(
              `broker ${broker.id} told to append at ${batch.baseOffset}, log end ${broker.log.length}`,
            );
          broker.log.push({ epoch: batch.leaderEpoch, value: decodeValue(batch.bytes) });
          break;
        }
        case 'send-epoch-query':
          this.send(action.to, {
            kind: 'epoch-query',
            from: broker.id,
            session: role.session,
            requestId: action.requestId,
            query: action.query,
          });
          break;
        case 'send-fetch':
          this.send(action.to, {
            kind: 'fetch',
            from: broker.id,
            session: role.session,
            requestId: action.requestId,
            request: action.request,
          });
          break;
        case 'refresh-metadata':
          this.sendMetadata(broker, true);
          break;
      }
    }
  }

  // ---- producers ----

  private produce(): void {
    const leader = this.controller.leader;
    if (leader === null) return;
    const requestId = this.nextProduceId++;
    const value = this.nextValue++;
    const acks: Acks = this.random() < 0.7 ? 'all' : 1;
    this.stats.produced++;
    this.producing.set(requestId, { value, acks });
    this.send(leader, { kind: 'produce', requestId, acks, value });
  }

  private handleProduce(broker: SimBroker, message: Extract<Message, { kind: 'produce' }>): void {
    const role = broker.role;
    if (role.kind !== 'leader') {
      this.reply(message.requestId, message.value, false);
      return;
    }
    const refused = role.state.checkAppend(message.acks);
    if (refused !== null) {
      this.reply(message.requestId, message.value, false);
      return;
    }
    const offset = broker.log.length;
    broker.log.push({ epoch: role.state.leaderEpoch, value: message.value });
    this.checker.onLeaderAppend(broker.id, role.state.leaderEpoch);
    this.runLeaderActions(
      broker,
      role.state.onLocalProgress({
        logEndOffset: BigInt(broker.log.length),
        localEnd: this.localEnd(broker),
      }),
    );
    if (message.acks !== 'all') {
      this.reply(message.requestId, message.value, true);
      return;
    }
    broker.waiting.set(message.requestId, { value: message.value, offset, acks: message.acks });
    this.runLeaderActions(
      broker,
      role.state.awaitReplication(message.requestId, BigInt(offset), this.now + 200),
    );
  }

  private reply(requestId: number, value: number, ok: boolean): void {
    // The answer travels back through the network: it may be lost (the producer would retry).
    const request = this.producing.get(requestId);
    if (request === undefined || request.value !== value) return;
    this.schedule(this.delay(), () => {
      if (!this.producing.delete(requestId) || !ok) return;
      if (request.acks === 'all') this.stats.ackedAll++;
      else this.stats.ackedOne++;
    });
  }

  // ---- the network ----

  private send(to: number, message: Message, reliable = false): void {
    if (!reliable && !this.healing && this.random() < this.options.lossRate) return;
    const broker = this.broker(to);
    this.queue.push({
      at: this.now + this.delay(),
      seq: this.seq++,
      to,
      incarnation: broker.incarnation,
      message,
    });
  }

  private schedule(afterMs: number, run: () => void, lossy = false): void {
    if (lossy && !this.healing && this.random() < this.options.lossRate) return;
    this.timers.push({ at: this.now + afterMs, seq: this.seq++, run });
  }

  private timers: { at: number; seq: number; run: () => void }[] = [];

  private deliverDue(): void {
    const dueTimers = this.timers.filter((timer) => timer.at <= this.now).sort((a, b) => a.seq - b.seq);
    this.timers = this.timers.filter((timer) => timer.at > this.now);
    for (const timer of dueTimers) timer.run();
    const due = this.queue.filter((delivery) => delivery.at <= this.now).sort((a, b) => a.seq - b.seq);
    this.queue = this.queue.filter((delivery) => delivery.at > this.now);
    for (const delivery of due) {
      const broker = this.broker(delivery.to);
      // A crashed broker loses what was sent to it, and a restarted one never sees old connections.
      if (!broker.alive || broker.incarnation !== delivery.incarnation) continue;
      this.deliver(broker, delivery.message);
    }
  }

  private deliver(broker: SimBroker, message: Message): void {
    const role = broker.role;
    switch (message.kind) {
      case 'metadata': {
        this.applyMetadata(broker, message.state, message.refresh);
        return;
      }
      case 'isr-result':
        if (role.kind === 'leader' && role.state.leaderEpoch === message.state.epoch) {
          this.runLeaderActions(
            broker,
            role.state.applyIsr(message.state.isr, message.state.isrVersion, this.now),
          );
          if (broker.known !== null && message.state.isrVersion > broker.known.isrVersion)
            broker.known = message.state;
        }
        return;
      case 'produce': {
        this.handleProduce(broker, message);
        return;
      }
      case 'epoch-query': {
        const answer: EpochAnswer =
          role.kind === 'leader' ? role.state.handleEpochQuery(message.query) : { error: 'NOT_LEADER' };
        this.send(message.from, {
          kind: 'epoch-answer',
          session: message.session,
          requestId: message.requestId,
          answer,
        });
        return;
      }
      case 'fetch': {
        let response: ReplicaFetchResponse;
        if (role.kind !== 'leader') response = { error: 'NOT_LEADER' };
        else {
          const { answer, actions } = role.state.handleFetch(message.request, this.now);
          this.log(
            `${broker.id} fetch from ${message.from} at ${message.request.fetchOffset}/${message.request.stableOffset}: ${answer.error ?? 'ok'}`,
          );
          this.runLeaderActions(broker, actions);
          if (answer.error !== null) response = { error: answer.error };
          else {
            const from = Number(answer.fetchOffset);
            const to = Math.min(Number(answer.endOffset), from + 1 + Math.floor(this.random() * 8));
            const batches: ReplicaBatch[] = [];
            for (let offset = from; offset < to; offset++) {
              const entry = broker.log[offset]!;
              batches.push({
                baseOffset: BigInt(offset),
                lastOffset: BigInt(offset),
                leaderEpoch: entry.epoch,
                bytes: encodeValue(entry.value),
              });
            }
            response = { error: null, batches, highWatermark: answer.highWatermark };
          }
        }
        this.send(message.from, {
          kind: 'fetch-response',
          session: message.session,
          requestId: message.requestId,
          response,
        });
        return;
      }
      case 'epoch-answer':
        if (role.kind === 'follower' && role.session === message.session)
          this.runFollowerActions(
            broker,
            role.state.onEpochAnswer(message.requestId, message.answer, this.now),
          );
        return;
      case 'fetch-response':
        if (role.kind === 'follower' && role.session === message.session)
          this.runFollowerActions(
            broker,
            role.state.onFetchResponse(message.requestId, message.response, this.now),
          );
        return;
    }
  }

  private finalCheck(): void {
    const leaderId = this.controller.leader;
    if (leaderId === null) {
      this.checker.violation('no leader after healing');
      return;
    }
    const leader = this.broker(leaderId);
    // Liveness: with the faults over, replication must finish what it started.
    if (this.converged()) this.stats.converged = 1;
    else this.checker.violation(`replicas did not converge within ${HEAL_MS} ms of healing`);
    this.checker.onFinal(
      leader.id,
      leader.log,
      this.brokers.map((broker) => ({ id: broker.id, log: broker.log, highWatermark: broker.highWatermark })),
    );
  }

  /** Every replica holds the leader's whole log, and the high watermark is its end. */
  private converged(): boolean {
    const leaderId = this.controller.leader;
    if (leaderId === null) return false;
    const leader = this.broker(leaderId);
    if (leader.role.kind !== 'leader' || leader.highWatermark !== leader.log.length) return false;
    return this.brokers.every(
      (broker) =>
        broker.alive &&
        broker.log.length === leader.log.length &&
        broker.log.every((entry, offset) => {
          const theirs = leader.log[offset]!;
          return entry.epoch === theirs.epoch && entry.value === theirs.value;
        }),
    );
  }

  // ---- helpers ----

  /** The leader's own high-watermark contribution under the topic's durability. */
  private localEnd(broker: SimBroker): bigint {
    return BigInt(this.options.durability === 'always' ? broker.stable : broker.log.length);
  }

  private broker(id: number): SimBroker {
    const broker = this.brokers[id - 1];
    if (broker === undefined) throw errorOf('INTERNAL_ERROR', `no broker ${id}`);
    return broker;
  }

  private delay(): number {
    return this.between(1, this.options.maxDelayMs);
  }

  private between(low: number, high: number): number {
    return low + Math.floor(this.random() * (high - low + 1));
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random() * items.length)]!;
  }
}

function encodeValue(value: number): Uint8Array {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value);
  return bytes;
}

function decodeValue(bytes: Uint8Array): number {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).readUInt32BE(0);
}
