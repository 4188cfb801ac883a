// The floor of replication's message path: what the hops of the design cost on this machine with
// no storage and no broker logic, in plain Node TCP on loopback. The same fixed-rate schedule
// (100-byte messages, latency from each message's intended send time) through
//  - 1 hop (the shape of RF=1): producer → relay → consumer;
//  - replicated, no wait: the relay ("leader") also answers two follower processes' pending fetches
//    with each message and takes their next fetches, but forwards to the consumer at once: the CPU
//    cost of the two extra processes and their traffic, without waiting for them;
//  - replicated (the shape of RF=3 acks 'all'): as above, and the leader forwards a message to the
//    consumer only once both followers' next fetches say they hold it (the high watermark).
// As in the cluster, each follower has one fetch in flight: the leader holds it until it has
// something new (a long poll) and answers with everything the follower lacks; the follower's next
// fetch carries its new log end. The leader and the followers are processes of their own (this
// file forked with --role, started once; each case begins on new connections with an empty log);
// the producer and the consumer are two worker threads of this process, as the bench tool runs
// them in bench/cluster-replication.ts, and the producer paces the same way (`block`, what the
// bench tool picks on a 2-core machine). Every process's CPU use over the measured window is
// reported, and the leader's wait from a message's arrival to its high watermark passing it.
// Rounds (--rounds) run the cases again in alternating order and add up their histograms.
// Run: npx tsx bench/replication-floor.ts [--seconds 5] [--rate 5000] [--size 100] [--rounds 1] [--json]

import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Socket, connect as tcpConnect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import * as hdr from 'hdr-histogram-js';
import { monotonicMs } from '../src/bench/clock.js';
import { encodeHistogram, latencyHistogram, recordMs, summarize } from '../src/bench/histograms.js';
import { argNumber, describeMachine, progress, writeResult } from './lib/report.js';

const WARMUP_MS = 1000;
/** Longest the producer blocks its thread while waiting for the next message's time (ms), as the bench tool's `block` pacing. */
const BLOCK_SLICE_MS = 0.1;
/** How long a case may take beyond its schedule before it counts as failed (ms). */
const DRAIN_DEADLINE_MS = 15_000;
/** How long starting processes and connecting may take (ms). */
const SETUP_DEADLINE_MS = 30_000;
const STOP_TIMEOUT_MS = 3000;

// ---------------------------------------------------------------------------------------------
// Frames, on every connection: [u32 LE length of what follows][u8 kind][body].
//   HELLO    body [u8 role]                                  first frame of every connection
//   MESSAGE  body [f64 LE intended send time, monotonic ms][u32 LE index][filler to --size]
//   FETCH    body [u32 LE next index]                        follower → leader: "I hold all below"
//   RECORDS  body [u32 LE first index][u32 LE count][count whole MESSAGE frames]  leader → follower
// ---------------------------------------------------------------------------------------------
const KIND_HELLO = 1;
const KIND_MESSAGE = 2;
const KIND_FETCH = 3;
const KIND_RECORDS = 4;
const ROLE_PRODUCER = 1;
const ROLE_CONSUMER = 2;
const ROLE_FOLLOWER = 3;
/** Messages carry their intended send time (8 bytes) and index (4 bytes). */
const MIN_SIZE = 12;
const MAX_FRAME = 64 * 1024 * 1024;

function frame(kind: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out.writeUInt32LE(1 + body.length, 0);
  out[4] = kind;
  body.copy(out, 5);
  return out;
}

function u32Frame(kind: number, value: number): Buffer {
  const body = Buffer.allocUnsafe(4);
  body.writeUInt32LE(value, 0);
  return frame(kind, body);
}

/** Splits a byte stream into frames; `whole` is the frame with its header, for forwarding as is. */
class FrameReader {
  private pending: Buffer | null = null;

  constructor(private readonly onFrame: (kind: number, body: Buffer, whole: Buffer) => void) {}

  push(chunk: Buffer): void {
    const data = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
    let at = 0;
    while (data.length - at >= 5) {
      const length = data.readUInt32LE(at);
      if (length < 1 || length > MAX_FRAME) throw new Error(`bad frame length ${length}`);
      if (data.length - at < 4 + length) break;
      this.onFrame(data[at + 4]!, data.subarray(at + 5, at + 4 + length), data.subarray(at, at + 4 + length));
      at += 4 + length;
    }
    this.pending = at < data.length ? data.subarray(at) : null;
  }
}

function openSocket(port: number, role: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host: '127.0.0.1', port, noDelay: true }, () => {
      socket.off('error', reject);
      socket.write(frame(KIND_HELLO, Buffer.from([role])));
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

// ---------------------------------------------------------------------------------------------
// The leader and follower processes talk to the orchestrator over the fork IPC channel. They are
// started once and serve every case: each case begins with `case` to the leader (which drops every
// connection and starts an empty log) and `connect` to the followers it needs.
// ---------------------------------------------------------------------------------------------
type LeaderMode = 'forward' | 'replicate-no-wait' | 'replicate';

type ToChild =
  | { type: 'case'; mode: LeaderMode; followers: number }
  | { type: 'connect'; port: number }
  | { type: 'mark' }
  | { type: 'report' };
type FromChild =
  | { type: 'listening'; port: number }
  | { type: 'ready' }
  | { type: 'peers'; followers: number; consumer: boolean }
  | { type: 'report'; cpuUs: number; wallUs: number; wait: string | null };

function send(message: FromChild): void {
  process.send!(message);
}

/**
 * Answers `mark` (start of the measured window) and `report` (its end: CPU time and wall time since
 * the mark, and `wait()`), and hands every other message to `handle`.
 */
function serveOrchestrator(hooks: {
  wait: () => string | null;
  reset: () => void;
  handle: (message: ToChild) => void;
}): void {
  let cpuAtMark = process.cpuUsage();
  let wallAtMark = monotonicMs();
  process.on('message', (message: ToChild) => {
    if (message.type === 'mark') {
      cpuAtMark = process.cpuUsage();
      wallAtMark = monotonicMs();
      hooks.reset();
    } else if (message.type === 'report') {
      const used = process.cpuUsage(cpuAtMark);
      send({
        type: 'report',
        cpuUs: used.user + used.system,
        wallUs: (monotonicMs() - wallAtMark) * 1000,
        wait: hooks.wait(),
      });
    } else hooks.handle(message);
  });
  // The orchestrator gone (killed, crashed): nothing is left to do here.
  process.on('disconnect', () => process.exit(0));
}

interface FollowerLink {
  socket: Socket;
  /** The follower holds every message below this (its last fetch said so). */
  fetchOffset: number;
  /** Its fetch is held here until there is something new (the long poll). */
  parked: boolean;
}

/**
 * One case's relay. `forward`: each message goes to the consumer as it arrives. `replicate-no-wait`:
 * also to the followers, but the consumer gets it at once. `replicate`: the consumer gets it once
 * every follower's fetch offset has passed it (the high watermark).
 */
class Relay {
  /** Whole MESSAGE frames from `logStart` on, and when each arrived (monotonic ms). */
  private readonly log: Buffer[] = [];
  private readonly arrivals: number[] = [];
  private logStart = 0;
  private logEnd = 0;
  private visibleEnd = 0;
  private consumer: Socket | null = null;
  private readonly followers: FollowerLink[] = [];
  /** From a message's arrival to its being sent to the consumer. */
  readonly waitHistogram = latencyHistogram();

  constructor(
    readonly mode: LeaderMode,
    private readonly followersExpected: number,
  ) {}

  accept(socket: Socket): void {
    let follower: FollowerLink | null = null;
    const reader = new FrameReader((kind, body, whole) => {
      if (kind === KIND_MESSAGE) this.onMessage(whole);
      else if (kind === KIND_FETCH && follower !== null) this.onFetch(follower, body.readUInt32LE(0));
      else if (kind === KIND_HELLO && body[0] === ROLE_CONSUMER) {
        this.consumer = socket;
        this.reportPeers();
      } else if (kind === KIND_HELLO && body[0] === ROLE_FOLLOWER) {
        follower = { socket, fetchOffset: 0, parked: false };
        this.followers.push(follower);
        this.reportPeers();
      } else if (!(kind === KIND_HELLO && body[0] === ROLE_PRODUCER))
        throw new Error(`leader: unexpected frame kind ${kind}`);
    });
    socket.on('data', (chunk) => reader.push(chunk));
  }

  private reportPeers(): void {
    send({ type: 'peers', followers: this.followers.length, consumer: this.consumer !== null });
  }

  private onMessage(whole: Buffer): void {
    if (this.mode === 'forward') {
      this.consumer?.write(whole);
      return;
    }
    this.log.push(whole);
    this.arrivals.push(monotonicMs());
    this.logEnd++;
    if (this.mode === 'replicate-no-wait') this.makeVisible(this.logEnd);
    for (const follower of this.followers) if (follower.parked) this.answer(follower);
    this.trim();
  }

  private onFetch(follower: FollowerLink, offset: number): void {
    follower.fetchOffset = offset;
    if (this.mode === 'replicate' && this.followers.length === this.followersExpected) {
      let highWatermark = this.logEnd;
      for (const each of this.followers) highWatermark = Math.min(highWatermark, each.fetchOffset);
      this.makeVisible(highWatermark);
    }
    this.answer(follower);
    this.trim();
  }

  /** Answers the follower's fetch with everything it lacks, or holds the fetch until there is some. */
  private answer(follower: FollowerLink): void {
    if (follower.fetchOffset >= this.logEnd) {
      follower.parked = true;
      return;
    }
    follower.parked = false;
    const records = this.log.slice(follower.fetchOffset - this.logStart);
    // RECORDS header: [u32 length][u8 kind][u32 first index][u32 count], then the MESSAGE frames.
    const header = Buffer.allocUnsafe(13);
    header.writeUInt32LE(9 + records.reduce((sum, record) => sum + record.length, 0), 0);
    header[4] = KIND_RECORDS;
    header.writeUInt32LE(follower.fetchOffset, 5);
    header.writeUInt32LE(records.length, 9);
    follower.socket.write(Buffer.concat([header, ...records]));
  }

  /** Sends the consumer everything below `end` it has not had, in one write. */
  private makeVisible(end: number): void {
    if (this.consumer === null || end <= this.visibleEnd) return;
    const now = monotonicMs();
    const batch = this.log.slice(this.visibleEnd - this.logStart, end - this.logStart);
    for (let i = this.visibleEnd; i < end; i++)
      recordMs(this.waitHistogram, now - this.arrivals[i - this.logStart]!);
    this.consumer.write(batch.length === 1 ? batch[0]! : Buffer.concat(batch));
    this.visibleEnd = end;
  }

  /** Drops what the consumer and every follower have had. */
  private trim(): void {
    let keepFrom = this.visibleEnd;
    for (const follower of this.followers) keepFrom = Math.min(keepFrom, follower.fetchOffset);
    const drop = keepFrom - this.logStart;
    if (drop > 0) {
      this.log.splice(0, drop);
      this.arrivals.splice(0, drop);
      this.logStart = keepFrom;
    }
  }
}

function runLeader(): void {
  let relay: Relay | null = null;
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    if (relay === null) socket.destroy();
    else relay.accept(socket);
  });
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    send({ type: 'listening', port: typeof address === 'object' && address !== null ? address.port : 0 });
  });
  serveOrchestrator({
    wait: () => (relay?.mode === 'replicate' ? encodeHistogram(relay.waitHistogram) : null),
    reset: () => relay?.waitHistogram.reset(),
    handle: (message) => {
      if (message.type !== 'case') throw new Error(`leader: unexpected ${message.type}`);
      for (const socket of sockets) socket.destroy();
      relay = new Relay(message.mode, message.followers);
      send({ type: 'ready' });
    },
  });
}

/** A follower: fetches from the leader, and on each answer fetches again from its new log end. */
function runFollower(): void {
  let socket: Socket | null = null;
  serveOrchestrator({
    wait: () => null,
    reset: () => undefined,
    handle: (message) => {
      if (message.type !== 'connect') throw new Error(`follower: unexpected ${message.type}`);
      socket?.destroy();
      void openSocket(message.port, ROLE_FOLLOWER).then((opened) => {
        socket = opened;
        const reader = new FrameReader((kind, body) => {
          if (kind !== KIND_RECORDS) throw new Error(`follower: unexpected frame kind ${kind}`);
          opened.write(u32Frame(KIND_FETCH, body.readUInt32LE(0) + body.readUInt32LE(4)));
        });
        opened.on('data', (chunk) => reader.push(chunk));
        opened.on('error', () => opened.destroy());
        opened.write(u32Frame(KIND_FETCH, 0));
        send({ type: 'ready' });
      });
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Worker threads of this process: the producer and the consumer. Each case: `connect` (answered
// with `ready`), then the schedule (answered with the outcome).
// ---------------------------------------------------------------------------------------------
interface Schedule {
  /** Intended send time of message 0 (monotonic ms); message i is due at startAt + i / rate. */
  startAt: number;
  rate: number;
  total: number;
  size: number;
}

interface ThreadData {
  /** This file, for src/bench/worker-ts-bootstrap.mjs to import. */
  entry: string;
  role: 'producer' | 'consumer';
}

type ToThread = { type: 'connect'; port: number } | { type: 'start'; schedule: Schedule };
type FromThread =
  | { type: 'ready' }
  | { type: 'produced'; sent: number }
  | { type: 'consumed'; histogram: string; measured: number; lastAt: number }
  | { type: 'failed'; message: string };

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

function messageFrame(index: number, intended: number, size: number): Buffer {
  const body = Buffer.alloc(size);
  body.writeDoubleLE(intended, 0);
  body.writeUInt32LE(index, 8);
  return frame(KIND_MESSAGE, body);
}

/** Sends every message as it falls due (late ones with their own intended time), pacing like the bench tool's `block`. */
async function produce(socket: Socket, schedule: Schedule): Promise<number> {
  const interval = 1000 / schedule.rate;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  let index = 0;
  for (;;) {
    const now = monotonicMs();
    const due: Buffer[] = [];
    while (index < schedule.total && schedule.startAt + index * interval <= now) {
      due.push(messageFrame(index, schedule.startAt + index * interval, schedule.size));
      index++;
    }
    if (due.length > 0) socket.write(due.length === 1 ? due[0]! : Buffer.concat(due));
    if (index >= schedule.total) return index;
    const untilNext = schedule.startAt + index * interval - monotonicMs();
    if (untilNext >= 2) await sleep(untilNext - 1);
    else {
      await nextTurn();
      const left = schedule.startAt + index * interval - monotonicMs();
      if (left > 0) Atomics.wait(pause, 0, 0, Math.min(left, BLOCK_SLICE_MS));
    }
  }
}

/** Records each message from its intended send time, once the warmup is over; ends with the last. */
function consume(socket: Socket, schedule: Schedule): Promise<FromThread> {
  const histogram = latencyHistogram();
  const measureFrom = schedule.startAt + WARMUP_MS;
  let measured = 0;
  let lastAt = 0;
  return new Promise((resolve, reject) => {
    const reader = new FrameReader((kind, body) => {
      if (kind !== KIND_MESSAGE) throw new Error(`consumer: unexpected frame kind ${kind}`);
      const now = monotonicMs();
      const intended = body.readDoubleLE(0);
      if (intended >= measureFrom) {
        recordMs(histogram, now - intended);
        measured++;
        lastAt = now;
      }
      if (body.readUInt32LE(8) === schedule.total - 1)
        resolve({ type: 'consumed', histogram: encodeHistogram(histogram), measured, lastAt });
    });
    socket.on('data', (chunk) => {
      try {
        reader.push(chunk);
      } catch (error) {
        reject(error);
      }
    });
    socket.once('close', () => reject(new Error('consumer: the relay closed the connection')));
  });
}

function runThread(data: ThreadData): void {
  const port = parentPort!;
  const post = (message: FromThread) => port.postMessage(message);
  let socket: Socket | null = null;
  const handle = async (message: ToThread): Promise<void> => {
    if (message.type === 'connect') {
      socket?.destroy();
      socket = await openSocket(message.port, data.role === 'producer' ? ROLE_PRODUCER : ROLE_CONSUMER);
      post({ type: 'ready' });
    } else if (socket === null) throw new Error(`${data.role}: started before connecting`);
    else if (data.role === 'producer') {
      post({ type: 'produced', sent: await produce(socket, message.schedule) });
      // end(), not destroy(): what was written last may still be queued here.
      socket.end();
    } else post(await consume(socket, message.schedule));
  };
  port.on('message', (message: ToThread) => {
    handle(message).catch((error: unknown) =>
      post({ type: 'failed', message: error instanceof Error ? error.message : String(error) }),
    );
  });
}

// ---------------------------------------------------------------------------------------------
// The orchestrator.
// ---------------------------------------------------------------------------------------------
interface Case {
  name: string;
  mode: LeaderMode;
  followers: number;
}

const CASES: Case[] = [
  { name: '1 hop', mode: 'forward', followers: 0 },
  { name: 'replicated, no wait', mode: 'replicate-no-wait', followers: 2 },
  { name: 'replicated', mode: 'replicate', followers: 2 },
];
const FOLLOWERS = 2;

interface Row {
  case: string;
  msgPerSec: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  p999Us: number;
  /** This case's P99 ÷ the 1-hop case's. */
  p99Ratio: number;
  p99PerRoundUs: number[];
  /** From a message's arrival at the leader to the high watermark passing it (replicated only). */
  leaderWait: { p50Us: number; p99Us: number } | null;
  /** CPU time per wall time over the measured window, % of one core (the followers added up). */
  cpuPercent: { leader: number; followers: number; benchProcess: number; total: number };
}

/** A forked leader or follower: its messages, its exit, and its end by PID. */
class ChildRole {
  readonly exited: Promise<never>;
  private readonly child: ChildProcess;
  private readonly waiters: Array<(message: FromChild) => boolean> = [];

  constructor(
    readonly name: string,
    args: string[],
  ) {
    // The parent's execArgv (tsx's loader) comes along, so the child runs this TypeScript file.
    this.child = fork(fileURLToPath(import.meta.url), args, {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    this.child.on('message', (message: FromChild) => {
      for (let i = 0; i < this.waiters.length; i++)
        if (this.waiters[i]!(message)) this.waiters.splice(i--, 1);
    });
    this.exited = new Promise<never>((_, reject) => {
      this.child.once('exit', (code, signal) =>
        reject(new Error(`${name} (pid ${this.child.pid}) exited early (${signal ?? `code ${code}`})`)),
      );
    });
    this.exited.catch(() => undefined);
  }

  /** The next message the predicate accepts (or its exit, or the deadline). */
  next<T extends FromChild>(accept: (message: FromChild) => message is T, deadlineMs: number): Promise<T> {
    return withDeadline(
      Promise.race([
        new Promise<T>((resolve) =>
          this.waiters.push((message) => {
            if (!accept(message)) return false;
            resolve(message);
            return true;
          }),
        ),
        this.exited,
      ]),
      deadlineMs,
      `${this.name}: no answer`,
    );
  }

  tell(message: ToChild): void {
    // A child that has gone is reported by `exited`; the failed send adds nothing.
    this.child.send(message, () => undefined);
  }

  /** SIGTERM by PID, then SIGKILL if it has not exited in time. */
  async stop(): Promise<void> {
    const pid = this.child.pid;
    if (pid === undefined || this.child.exitCode !== null || this.child.signalCode !== null) return;
    const gone = once(this.child, 'exit');
    process.kill(pid, 'SIGTERM');
    const timer = setTimeout(() => {
      if (this.child.exitCode === null && this.child.signalCode === null) process.kill(pid, 'SIGKILL');
    }, STOP_TIMEOUT_MS);
    await gone;
    clearTimeout(timer);
  }
}

/** The producer or consumer thread: its messages in order, or its failure. */
class ThreadRole {
  readonly worker: Worker;
  private readonly messages: FromThread[] = [];
  private readonly waiters: Array<() => void> = [];
  private failure: Error | null = null;

  constructor(readonly role: ThreadData['role']) {
    // Node 20 applies no --import hooks to a worker's main module: the bootstrap registers tsx first.
    const data: ThreadData = { role, entry: import.meta.url };
    this.worker = new Worker(new URL('../src/bench/worker-ts-bootstrap.mjs', import.meta.url), {
      workerData: data,
      execArgv: [],
    });
    const wake = () => {
      for (const waiter of this.waiters.splice(0)) waiter();
    };
    this.worker.on('message', (message: FromThread) => {
      if (message.type === 'failed') this.failure = new Error(`${role}: ${message.message}`);
      else this.messages.push(message);
      wake();
    });
    this.worker.on('error', (error) => {
      this.failure = new Error(`${role}: ${error.message}`);
      wake();
    });
    this.worker.on('exit', (code) => {
      this.failure ??= new Error(`${role}: the thread exited (code ${code})`);
      wake();
    });
  }

  tell(message: ToThread): void {
    this.worker.postMessage(message);
  }

  async next(deadlineMs: number): Promise<FromThread> {
    return withDeadline(
      (async () => {
        for (;;) {
          const message = this.messages.shift();
          if (message !== undefined) return message;
          if (this.failure !== null) throw this.failure;
          await new Promise<void>((resolve) => this.waiters.push(resolve));
        }
      })(),
      deadlineMs,
      `${this.role}: no answer`,
    );
  }
}

async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

type Of<K extends FromChild['type']> = Extract<FromChild, { type: K }>;
const is =
  <K extends FromChild['type']>(type: K) =>
  (message: FromChild): message is Of<K> =>
    message.type === type;

/** Set on SIGINT/SIGTERM: the processes then end because they are stopped, not by failing. */
let stopping = false;

/** Every process and thread this run started, so that an error anywhere still stops them all. */
const started = { children: [] as ChildRole[], threads: [] as ThreadRole[] };

async function stopAll(): Promise<void> {
  await Promise.all(started.threads.splice(0).map((thread) => thread.worker.terminate()));
  await Promise.all(started.children.splice(0).map((child) => child.stop()));
}

interface Participants {
  leader: ChildRole;
  leaderPort: number;
  followers: ChildRole[];
  producer: ThreadRole;
  consumer: ThreadRole;
}

async function startParticipants(): Promise<Participants> {
  progress('starting the leader and follower processes and the producer and consumer threads');
  const leader = new ChildRole('leader', ['--role', 'leader']);
  const followers = Array.from(
    { length: FOLLOWERS },
    (_, i) => new ChildRole(`follower ${i + 1}`, ['--role', 'follower']),
  );
  const producer = new ThreadRole('producer');
  const consumer = new ThreadRole('consumer');
  started.children.push(leader, ...followers);
  started.threads.push(producer, consumer);
  const listening = await leader.next(is('listening'), SETUP_DEADLINE_MS);
  return { leader, leaderPort: listening.port, followers, producer, consumer };
}

/** One round of one case: the raw measurements, added up over rounds by `summarizeCase`. */
interface Measurement {
  latency: hdr.Histogram;
  wait: hdr.Histogram | null;
  /** Messages delivered in the measured window, and from its start to the last of them (ms). */
  delivered: number;
  spanMs: number;
  /** % of one core over the measured window (the followers added up). */
  cpu: { leader: number; followers: number; benchProcess: number };
}

async function runCase(
  item: Case,
  label: string,
  participants: Participants,
  options: { rate: number; seconds: number; size: number },
): Promise<Measurement> {
  const { leader, leaderPort, producer, consumer } = participants;
  progress(`${label}: connecting`);
  const reset = leader.next(is('ready'), SETUP_DEADLINE_MS);
  leader.tell({ type: 'case', mode: item.mode, followers: item.followers });
  await reset;
  let peers = { followers: 0, consumer: false };
  const allPeers = leader.next((message): message is Of<'peers'> => {
    if (message.type !== 'peers') return false;
    peers = message;
    return message.followers === item.followers && message.consumer;
  }, SETUP_DEADLINE_MS);
  const followers = participants.followers.slice(0, item.followers);
  const followersReady = followers.map((follower) => follower.next(is('ready'), SETUP_DEADLINE_MS));
  for (const follower of followers) follower.tell({ type: 'connect', port: leaderPort });
  for (const thread of [producer, consumer]) thread.tell({ type: 'connect', port: leaderPort });
  await Promise.all([...followersReady, producer.next(SETUP_DEADLINE_MS), consumer.next(SETUP_DEADLINE_MS)]);
  await allPeers.catch((error: Error) => {
    throw new Error(`${error.message} (the leader sees ${JSON.stringify(peers)})`);
  });

  const total = Math.round(options.rate * (options.seconds + WARMUP_MS / 1000));
  const schedule: Schedule = { startAt: monotonicMs() + 50, rate: options.rate, total, size: options.size };
  const measureFrom = schedule.startAt + WARMUP_MS;
  const measureTo = measureFrom + options.seconds * 1000;
  const children = [leader, ...participants.followers];
  consumer.tell({ type: 'start', schedule });
  producer.tell({ type: 'start', schedule });
  const ticker = setInterval(() => {
    const now = monotonicMs();
    progress(
      now < measureFrom
        ? `${label}: warmup`
        : `${label}: measuring, ${((now - measureFrom) / 1000).toFixed(0)} of ${options.seconds} s`,
    );
  }, 1000);
  try {
    await sleep(measureFrom - monotonicMs());
    for (const child of children) child.tell({ type: 'mark' });
    const cpuAtMark = process.cpuUsage();
    const wallAtMark = monotonicMs();
    await sleep(measureTo - monotonicMs());
    const reports = children.map((child) => child.next(is('report'), SETUP_DEADLINE_MS));
    for (const child of children) child.tell({ type: 'report' });
    const cpuHere = process.cpuUsage(cpuAtMark);
    const wallHereUs = (monotonicMs() - wallAtMark) * 1000;
    const [leaderReport, ...followerReports] = await Promise.all(reports);
    const produced = await producer.next(DRAIN_DEADLINE_MS);
    const consumed = await consumer.next(DRAIN_DEADLINE_MS);
    if (produced.type !== 'produced' || consumed.type !== 'consumed')
      throw new Error(`${label}: unexpected results ${produced.type}, ${consumed.type}`);
    if (consumed.measured === 0) throw new Error(`${label}: no message arrived in the measured window`);
    const percent = (cpuUs: number, wallUs: number) => (cpuUs / wallUs) * 100;
    return {
      latency: hdr.decodeFromCompressedBase64(consumed.histogram),
      wait: leaderReport!.wait === null ? null : hdr.decodeFromCompressedBase64(leaderReport!.wait),
      delivered: consumed.measured,
      spanMs: Math.max(1, consumed.lastAt - measureFrom),
      cpu: {
        leader: percent(leaderReport!.cpuUs, leaderReport!.wallUs),
        followers: followerReports.reduce((sum, report) => sum + percent(report.cpuUs, report.wallUs), 0),
        benchProcess: percent(cpuHere.user + cpuHere.system, wallHereUs),
      },
    };
  } finally {
    clearInterval(ticker);
  }
}

/** Adds up a case's rounds: histograms merged, throughput over all rounds, CPU averaged. */
function summarizeCase(item: Case, rounds: Measurement[]): Omit<Row, 'p99Ratio'> {
  const latency = latencyHistogram();
  const wait = rounds[0]!.wait === null ? null : latencyHistogram();
  for (const round of rounds) {
    latency.add(round.latency);
    if (wait !== null && round.wait !== null) wait.add(round.wait);
  }
  const all = summarize(latency)!;
  const waited = wait === null ? null : summarize(wait);
  const mean = (pick: (round: Measurement) => number) =>
    Number((rounds.reduce((sum, round) => sum + pick(round), 0) / rounds.length).toFixed(1));
  const cpu = {
    leader: mean((round) => round.cpu.leader),
    followers: mean((round) => round.cpu.followers),
    benchProcess: mean((round) => round.cpu.benchProcess),
  };
  return {
    case: item.name,
    msgPerSec: Math.round(
      (rounds.reduce((sum, round) => sum + round.delivered, 0) * 1000) /
        rounds.reduce((sum, round) => sum + round.spanMs, 0),
    ),
    p50Us: all.p50,
    p90Us: all.p90,
    p99Us: all.p99,
    p999Us: all.p999,
    p99PerRoundUs: rounds.map((round) => round.latency.getValueAtPercentile(99)),
    leaderWait: waited === null ? null : { p50Us: waited.p50, p99Us: waited.p99 },
    cpuPercent: { ...cpu, total: Number((cpu.leader + cpu.followers + cpu.benchProcess).toFixed(1)) },
  };
}

function positive(name: string, fallback: number, min: number): number {
  const value = argNumber(name, fallback);
  if (!(value >= min)) throw new Error(`--${name} ${value}: must be at least ${min}`);
  return value;
}

async function main(): Promise<void> {
  const seconds = positive('seconds', 5, 0.1);
  const rate = positive('rate', 5000, 1);
  const size = Math.round(positive('size', 100, MIN_SIZE));
  const rounds = Math.round(positive('rounds', 1, 1));
  const json = process.argv.includes('--json');
  const interrupted = () => {
    stopping = true;
    void stopAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  const measured = new Map<Case, Measurement[]>(CASES.map((item) => [item, []]));
  try {
    const participants = await startParticipants();
    // A process that dies ends the run at once (rather than at a deadline).
    const anyExit = Promise.race(
      [participants.leader, ...participants.followers].map((child) => child.exited),
    );
    for (let round = 0; round < rounds; round++) {
      // Rounds alternate the order of the cases, so that a drift of the machine hits all alike.
      const order = round % 2 === 0 ? CASES : [...CASES].reverse();
      for (const item of order) {
        const label = `round ${round + 1}/${rounds}, ${item.name}`;
        const result = runCase(item, label, participants, { rate, seconds, size });
        result.catch(() => undefined);
        measured.get(item)!.push(await Promise.race([result, anyExit]));
      }
    }
  } finally {
    await stopAll();
    if (process.stderr.isTTY) process.stderr.write('\n');
  }
  const rows = CASES.map((item) => summarizeCase(item, measured.get(item)!));
  const baseP99 = rows[0]!.p99Us;
  const result = {
    command: `npx tsx bench/replication-floor.ts --seconds ${seconds} --rate ${rate} --size ${size} --rounds ${rounds}`,
    machine: describeMachine(),
    settings: `${size}-byte messages at ${rate} msg/s, open loop (latency from each message's intended send time), ${WARMUP_MS / 1000} s warmup then ${seconds} s measured per case and round, ${rounds} round(s) in alternating order, histograms added up; plain Node TCP on 127.0.0.1, TCP_NODELAY, no storage; leader and followers are processes, producer and consumer are threads of the bench process`,
    rows: rows.map((row): Row => ({ ...row, p99Ratio: Number((row.p99Us / baseP99).toFixed(2)) })),
  };
  // The record for docs/benchmarks.md (not in the CI smoke run, BENCH_SMOKE=1).
  writeResult({
    benchmark: 'replication-floor',
    title: 'The floor of the replicated path: the hops of RF=3 acks all vs RF=1 in plain Node TCP, no broker',
    command: result.command,
    settings: {
      messageBytes: size,
      rate,
      secondsPerCaseAndRound: seconds,
      rounds,
      warmupSeconds: WARMUP_MS / 1000,
      transport: 'Node TCP on 127.0.0.1, TCP_NODELAY, no storage',
    },
    rows: result.rows.map((row) => ({
      case: row.case,
      'msg/s': row.msgPerSec,
      'p50 µs': row.p50Us,
      'p90 µs': row.p90Us,
      'p99 µs': row.p99Us,
      'p99.9 µs': row.p999Us,
      '× 1-hop p99': row.p99Ratio,
      'p99 per round µs': row.p99PerRoundUs.join(', '),
      'leader wait p50 / p99 µs':
        row.leaderWait === null ? null : `${row.leaderWait.p50Us} / ${row.leaderWait.p99Us}`,
      'CPU % leader / followers / bench': `${row.cpuPercent.leader} / ${row.cpuPercent.followers} / ${row.cpuPercent.benchProcess}`,
    })),
    notes: [
      "1 hop is the path of RF=1 (producer → leader → consumer); replicated is the path of RF=3 with acks all: the leader hands a message to the consumer once both followers' next fetches say they hold it. replicated, no wait has the same traffic but forwards at once: the CPU of the extra processes without the wait.",
      "Latency from each message's intended send time; leader and followers are processes, producer and consumer threads of the bench process; each follower has one fetch in flight, held by the leader until it has something new.",
    ],
  });
  if (json) {
    console.log(JSON.stringify(result, null, 2));
    return;
  }
  console.log(`${result.command}\n${JSON.stringify(result.machine)}\n${result.settings}\n`);
  const header = [
    'case'.padEnd(20),
    'msg/s'.padStart(8),
    'p50 µs'.padStart(8),
    'p90 µs'.padStart(8),
    'p99 µs'.padStart(8),
    'p99.9 µs'.padStart(9),
    '×1hop p99'.padStart(10),
    'p99 per round µs'.padStart(20),
    'leader wait p50/p99 µs'.padStart(23),
    'CPU % leader/followers/bench/total'.padStart(35),
  ];
  console.log(header.join('  '));
  for (const row of result.rows) {
    const cpu = row.cpuPercent;
    console.log(
      [
        row.case.padEnd(20),
        String(row.msgPerSec).padStart(8),
        String(row.p50Us).padStart(8),
        String(row.p90Us).padStart(8),
        String(row.p99Us).padStart(8),
        String(row.p999Us).padStart(9),
        String(row.p99Ratio).padStart(10),
        row.p99PerRoundUs.join(', ').padStart(20),
        (row.leaderWait === null ? '-' : `${row.leaderWait.p50Us} / ${row.leaderWait.p99Us}`).padStart(23),
        `${cpu.leader} / ${cpu.followers} / ${cpu.benchProcess} / ${cpu.total}`.padStart(35),
      ].join('  '),
    );
  }
}

if (!isMainThread) runThread(workerData as ThreadData);
else if (process.argv.includes('--role')) {
  const role = process.argv[process.argv.indexOf('--role') + 1];
  if (role === 'leader') runLeader();
  else if (role === 'follower') runFollower();
  else throw new Error(`unknown --role ${role}`);
} else
  await main().catch((error: unknown) => {
    // Everything started is stopped by now; timers of an abandoned case must not keep this alive.
    if (stopping) return;
    console.error(error);
    process.exit(1);
  });
