// The battery's processes: one etcd and N `memorystreamer serve --cluster` brokers, each in its own
// network namespace when the network allows partitions (network.ts), else all on 127.0.0.1. Each
// can be killed (SIGKILL), paused (SIGSTOP/SIGCONT) and started again on its data directory; every
// process's stderr goes to a log file in the run's directory. One broker may keep its data on a
// small tmpfs of its own, which the nemesis fills to the last byte (a full disk).

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type SpawnedBroker, spawnBrokerProcess } from '../../src/bench/spawned-broker.js';
import { localEtcdArgs } from '../../src/cli/local-etcd.js';
import { FAULT_SWITCH_ENV, type FaultSwitch } from '../../src/cluster/test-switches.js';
import { freePort } from '../../test/harness/etcd.js';
import type { Network } from './network.js';

export interface ProcessesOptions {
  readonly brokers: number;
  /** The run's directory: data directories, logs. */
  readonly root: string;
  readonly network: Network | null;
  /** A deliberately broken rule for every broker (test-switches.ts), or null. */
  readonly faultSwitch: FaultSwitch | null;
  /** The broker whose data directory is a small tmpfs (a full disk can be made), or null. */
  readonly smallDiskBroker: number | null;
}

interface BrokerSlot {
  readonly id: number;
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  process: SpawnedBroker | null;
  paused: boolean;
}

const ETCD_CLIENT_PORT = 2379;
const BROKER_PORT = 7400;
/** The tmpfs of the broker with a small disk. */
export const SMALL_DISK_BYTES = 256 * 1024 * 1024;

function onLoopback(network: Network | null): boolean {
  return network === null;
}

export class Processes {
  private readonly brokers = new Map<number, BrokerSlot>();
  private etcd: ChildProcess | null = null;
  private etcdExited: Promise<void> = Promise.resolve();
  private etcdPeerPort = 2380;
  private etcdHost = '127.0.0.1';
  private etcdPort = ETCD_CLIENT_PORT;
  private readonly logs = new Map<string, WriteStream>();
  private mountedDisk: string | null = null;
  private filler: string | null = null;

  constructor(private readonly options: ProcessesOptions) {}

  get smallDiskBroker(): number | null {
    return this.mountedDisk === null ? null : this.options.smallDiskBroker;
  }

  get brokerIds(): number[] {
    return [...this.brokers.keys()];
  }

  get etcdEndpoint(): string {
    return `${this.etcdHost}:${this.etcdPort}`;
  }

  address(id: number): string {
    const slot = this.slot(id);
    return `${slot.host}:${slot.port}`;
  }

  addresses(): string[] {
    return this.brokerIds.map((id) => this.address(id));
  }

  dataDir(id: number): string {
    return this.slot(id).dataDir;
  }

  isRunning(id: number): boolean {
    return this.slot(id).process !== null;
  }

  isPaused(id: number): boolean {
    return this.slot(id).paused;
  }

  private slot(id: number): BrokerSlot {
    const slot = this.brokers.get(id);
    if (slot === undefined) throw new Error(`no broker ${id}`);
    return slot;
  }

  private log(name: string): WriteStream {
    let stream = this.logs.get(name);
    if (stream === undefined) {
      stream = createWriteStream(join(this.options.root, 'logs', `${name}.log`), { flags: 'a' });
      this.logs.set(name, stream);
    }
    return stream;
  }

  /** Etcd, then every broker. */
  async start(): Promise<void> {
    await mkdir(join(this.options.root, 'logs'), { recursive: true });
    const { network } = this.options;
    if (network !== null) this.etcdHost = network.member('etcd').ip;
    else {
      this.etcdPort = await freePort();
      this.etcdPeerPort = await freePort();
    }
    await this.startEtcd();
    for (let id = 1; id <= this.options.brokers; id++) {
      const host = network !== null ? network.member(`b${id}`).ip : '127.0.0.1';
      const port = onLoopback(network) ? await freePort() : BROKER_PORT;
      const dataDir = join(this.options.root, `b${id}`);
      await mkdir(dataDir, { recursive: true });
      if (this.options.smallDiskBroker === id) await this.mountSmallDisk(dataDir);
      this.brokers.set(id, { id, host, port, dataDir, process: null, paused: false });
    }
    await Promise.all(this.brokerIds.map((id) => this.startBroker(id)));
  }

  private async mountSmallDisk(dir: string): Promise<void> {
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${SMALL_DISK_BYTES}`, 'tmpfs', dir], {
      encoding: 'utf8',
    });
    if (mounted.status !== 0) throw new Error(`mount tmpfs on ${dir}: ${mounted.stderr}`);
    this.mountedDisk = dir;
  }

  private async startEtcd(): Promise<void> {
    const dataDir = join(this.options.root, 'etcd');
    const args = localEtcdArgs({
      name: 'chaos',
      dataDir,
      clientPort: this.etcdPort,
      peerPort: this.etcdPeerPort,
    }).map((arg) => arg.replaceAll('127.0.0.1', this.etcdHost));
    const network = this.options.network;
    const [command, ...rest] = [...(network?.wrapper('etcd') ?? []), 'etcd', ...args, '--log-level=warn'];
    const child = spawn(command!, rest, { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.pipe(this.log('etcd'), { end: false });
    this.etcd = child;
    this.etcdExited = new Promise((resolve) => child.once('exit', () => resolve()));
    const killOnExit = () => child.kill('SIGKILL');
    process.once('exit', killOnExit);
    void this.etcdExited.then(() => process.off('exit', killOnExit));
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`etcd exited with ${child.exitCode} (logs/etcd.log)`);
      try {
        const response = await fetch(`http://${this.etcdEndpoint}/health`);
        if (response.ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error('etcd did not become healthy in 30 s (logs/etcd.log)');
  }

  /** SIGKILL to etcd, then the same member again on its data directory. */
  async restartEtcd(): Promise<void> {
    this.etcd?.kill('SIGKILL');
    await this.etcdExited;
    await this.startEtcd();
  }

  /**
   * Starts broker `id` on its data directory. A broker killed a moment ago may find its id still
   * registered (its lease lives on for a second or two): it is started again until it runs.
   */
  async startBroker(id: number): Promise<void> {
    const slot = this.slot(id);
    if (slot.process !== null) return;
    const { network, faultSwitch } = this.options;
    const log = this.log(`b${id}`);
    let lastError: unknown = null;
    for (let attempt = 1; attempt <= 8; attempt++) {
      try {
        slot.process = await spawnBrokerProcess({
          host: slot.host,
          port: slot.port,
          dataDir: slot.dataDir,
          startupTimeoutMs: 60_000,
          ...(network !== null ? { wrapper: network.wrapper(`b${id}`) } : {}),
          env: {
            MEMORYSTREAMER_CLUSTER_ETCD: `etcd://${this.etcdEndpoint}/chaos`,
            MEMORYSTREAMER_CLUSTER_BROKER_ID: String(id),
            MEMORYSTREAMER_CLUSTER_ADVERTISE: `${slot.host}:${slot.port}`,
            MEMORYSTREAMER_CLUSTER_LEASE_TTL: '1s',
            MEMORYSTREAMER_CLUSTER_REPLICA_LAG_TIME: '4s',
            // Leadership, following and ISR changes are logged at info: the run's logs/ tell the story.
            MEMORYSTREAMER_LOG_LEVEL: 'info',
            [FAULT_SWITCH_ENV]: faultSwitch ?? undefined,
          },
          stderr: (text) => log.write(text),
        });
        slot.paused = false;
        const started = slot.process;
        void started.exited.then(() => {
          if (slot.process === started) slot.process = null;
        });
        return;
      } catch (error) {
        lastError = error;
        log.write(`\n[chaos] start attempt ${attempt} of broker ${id} failed: ${(error as Error).message}\n`);
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
    throw new Error(`broker ${id} did not start: ${(lastError as Error).message}`);
  }

  async killBroker(id: number): Promise<void> {
    const slot = this.slot(id);
    const running = slot.process;
    if (running === null) return;
    if (slot.paused) process.kill(running.pid, 'SIGCONT');
    slot.paused = false;
    await running.kill();
    slot.process = null;
  }

  pauseBroker(id: number): void {
    const slot = this.slot(id);
    if (slot.process === null || slot.paused) return;
    process.kill(slot.process.pid, 'SIGSTOP');
    slot.paused = true;
  }

  resumeBroker(id: number): void {
    const slot = this.slot(id);
    if (slot.process === null || !slot.paused) return;
    process.kill(slot.process.pid, 'SIGCONT');
    slot.paused = false;
  }

  /**
   * Runs broker `id` slowly: stopped (SIGSTOP) most of the time, let run (SIGCONT) `runMs` every
   * `periodMs`, until the returned function is called (which lets it run freely again).
   */
  throttleBroker(id: number, runMs: number, periodMs: number): () => void {
    const slot = this.slot(id);
    const running = slot.process;
    if (running === null || slot.paused) return () => undefined;
    let on = true;
    let timer: NodeJS.Timeout | undefined;
    const signal = (name: NodeJS.Signals) => {
      try {
        process.kill(running.pid, name);
      } catch {
        // it exited meanwhile
      }
    };
    const cycle = (stopped: boolean) => {
      if (!on) return;
      signal(stopped ? 'SIGCONT' : 'SIGSTOP');
      timer = setTimeout(() => cycle(!stopped), stopped ? runMs : periodMs - runMs);
    };
    cycle(false);
    return () => {
      on = false;
      clearTimeout(timer);
      signal('SIGCONT');
    };
  }

  /** Fills the small disk up to the last byte; returns the bytes written. */
  async fillDisk(): Promise<number> {
    if (this.mountedDisk === null) return 0;
    this.filler = join(this.mountedDisk, 'chaos-filler');
    const file = await open(this.filler, 'w');
    const chunk = Buffer.alloc(1024 * 1024);
    let written = 0;
    try {
      for (;;) {
        try {
          const { bytesWritten } = await file.write(chunk, 0, chunk.length);
          written += bytesWritten;
          if (bytesWritten < chunk.length) break;
        } catch {
          break; // ENOSPC: full
        }
      }
      // The last bytes, in small pieces.
      const small = Buffer.alloc(512);
      for (;;) {
        try {
          const { bytesWritten } = await file.write(small, 0, small.length);
          written += bytesWritten;
          if (bytesWritten === 0) break;
        } catch {
          break;
        }
      }
    } finally {
      await file.close();
    }
    return written;
  }

  async freeDisk(): Promise<void> {
    if (this.filler === null) return;
    await rm(this.filler, { force: true });
    this.filler = null;
  }

  /** SIGTERM to every broker (each writes its high-watermark checkpoint), waiting for them all. */
  async stopBrokers(): Promise<void> {
    await Promise.all(
      this.brokerIds.map(async (id) => {
        const slot = this.slot(id);
        const running = slot.process;
        if (running === null) return;
        if (slot.paused) process.kill(running.pid, 'SIGCONT');
        slot.paused = false;
        await running.stop();
        slot.process = null;
      }),
    );
  }

  /** Everything stops; the small disk is unmounted after its contents were read. */
  async stopAll(): Promise<void> {
    await this.stopBrokers();
    if (this.etcd !== null && this.etcd.exitCode === null) {
      this.etcd.kill('SIGKILL');
      await this.etcdExited;
    }
    for (const stream of this.logs.values()) stream.end();
  }

  unmount(): void {
    if (this.mountedDisk === null) return;
    spawnSync('umount', ['-l', this.mountedDisk]);
    this.mountedDisk = null;
  }
}
