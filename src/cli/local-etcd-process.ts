// A one-member etcd on 127.0.0.1 as a child process, for `serve --cores N` when no --cluster is
// given: its data in <dir>/etcd (the cluster's topics and assignments outlive a restart), its
// output in <dir>/etcd.log, client and peer ports picked free at each start (a one-member etcd
// starts on its data directory with other ports). Stopped by its PID: SIGTERM, then SIGKILL.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { errorOf } from '../protocol/error-codes.js';
import { freePort } from './free-port.js';
import { localEtcdArgs } from './local-etcd.js';

const HEALTHY_WITHIN_MS = 20_000;
const STOP_WITHIN_MS = 5_000;
const START_ATTEMPTS = 5;

export interface LocalEtcdProcess {
  /** etcd://127.0.0.1:<client port>/<prefix>, what `serve --cluster` takes. */
  readonly cluster: string;
  readonly clientPort: number;
  readonly pid: number;
  readonly dataDir: string;
  readonly logFile: string;
  /** The ports it listens on, to start it again at the same address. */
  readonly ports: { client: number; peer: number };
  /** Settles when the process has exited (by itself or by stop). */
  readonly exited: Promise<void>;
  /** SIGTERM, SIGKILL if it has not exited in 5 s; resolves once it has exited. */
  stop(): Promise<void>;
}

export function etcdInstalled(): boolean {
  return spawnSync('etcd', ['--version'], { stdio: 'ignore' }).status === 0;
}

function exitedOf(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

/**
 * Starts etcd and resolves once it answers its health check. `wrapper` runs it under another
 * command (the supervisor's `setpriv --pdeathsig`, so etcd ends with the process that started it).
 */
export interface LocalEtcdOptions {
  dir: string;
  prefix: string;
  wrapper?: readonly string[];
  /** Listen on these (to start it again where the brokers look for it); default: free ones. */
  ports?: { client: number; peer: number };
}

export async function startLocalEtcd(options: LocalEtcdOptions): Promise<LocalEtcdProcess> {
  if (!etcdInstalled()) throw errorOf('ETCD_NOT_INSTALLED');
  await mkdir(options.dir, { recursive: true });
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options);
    } catch (error) {
      // A port found free can be taken before etcd binds it: pick others (fixed ports: give up).
      const taken = /address already in use/.test((error as Error).message);
      if (attempt >= START_ATTEMPTS || !taken || options.ports !== undefined) throw error;
    }
  }
}

async function startOnce(options: LocalEtcdOptions): Promise<LocalEtcdProcess> {
  const dataDir = join(options.dir, 'etcd');
  const logFile = join(options.dir, 'etcd.log');
  const clientPort = options.ports?.client ?? (await freePort());
  const peerPort = options.ports?.peer ?? (await freePort());
  const log = createWriteStream(logFile, { flags: 'a' });
  const args = localEtcdArgs({ name: 'local', dataDir, clientPort, peerPort });
  const [command, ...rest] = [...(options.wrapper ?? []), 'etcd', ...args];
  const child = spawn(command!, rest, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let tail = '';
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-2000);
    log.write(chunk);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = exitedOf(child);
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  void exited.then(() => {
    process.off('exit', killOnExit);
    log.end();
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_WITHIN_MS);
      await exited;
      clearTimeout(timer);
    }
  };
  const pid = child.pid;
  const deadline = Date.now() + HEALTHY_WITHIN_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null || pid === undefined) {
      await exited;
      throw errorOf(
        'CONTROL_PLANE_UNAVAILABLE',
        `the local etcd exited (${child.signalCode ?? `code ${child.exitCode}`}): ${tail.trim().split('\n').slice(-3).join(' | ')}; see ${logFile}`,
      );
    }
    try {
      const response = await fetch(`http://127.0.0.1:${clientPort}/health`);
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw errorOf(
        'CONTROL_PLANE_UNAVAILABLE',
        `the local etcd did not become healthy within ${HEALTHY_WITHIN_MS} ms; see ${logFile}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    cluster: `etcd://127.0.0.1:${clientPort}/${options.prefix}`,
    clientPort,
    pid,
    dataDir,
    logFile,
    ports: { client: clientPort, peer: peerPort },
    exited,
    stop,
  };
}
