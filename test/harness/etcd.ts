// Starts a real etcd (Debian's `etcd-server`) for tests: its own temporary data directory, free
// loopback ports, the fast timings of a test cluster, and a stop() that kills it by its PID and
// removes the directory. Tests that need etcd skip with a reason when the binary is missing.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { localEtcdArgs } from '../../src/cli/local-etcd.js';
import { makeTempDir, removeTempDir } from './temp-dir.js';

export interface EtcdProcess {
  /** `http://127.0.0.1:<port>` of the client listener. */
  readonly endpoint: string;
  readonly pid: number;
  readonly dataDir: string;
  /** SIGSTOP / SIGCONT, for tests of an etcd that stops answering without closing connections. */
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
}

export function etcdAvailable(): boolean {
  return spawnSync('etcd', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function waitForHealth(endpoint: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`etcd exited with ${child.exitCode}:\n${output()}`);
    try {
      const response = await fetch(`${endpoint}/health`);
      if (response.ok && ((await response.json()) as { health?: string }).health === 'true') return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`etcd did not become healthy in 20 s:\n${output()}`);
}

/**
 * Starts etcd on free ports. A port found free can be taken by another test's process before etcd
 * binds it: then etcd exits with "address already in use", and it starts again on other ports.
 */
export async function startEtcd(): Promise<EtcdProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startEtcdOnce();
    } catch (error) {
      if (attempt >= 5 || !/address already in use/.test((error as Error).message)) throw error;
    }
  }
}

async function startEtcdOnce(): Promise<EtcdProcess> {
  const dataDir = await makeTempDir('ms-etcd-');
  const clientPort = await freePort();
  const peerPort = await freePort();
  const endpoint = `http://127.0.0.1:${clientPort}`;
  const child = spawn(
    'etcd',
    [...localEtcdArgs({ name: 'test', dataDir, clientPort, peerPort }), '--log-level=error'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-4000);
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('etcd did not start');
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await waitForHealth(endpoint, child, () => stderr);
  } catch (error) {
    child.kill('SIGKILL');
    await exited;
    await removeTempDir(dataDir);
    throw error;
  }
  return {
    endpoint,
    pid,
    dataDir,
    pause: () => process.kill(pid, 'SIGSTOP'),
    resume: () => process.kill(pid, 'SIGCONT'),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        process.kill(pid, 'SIGCONT');
        child.kill('SIGKILL');
        await exited;
      }
      await removeTempDir(dataDir);
    },
  };
}
