// Processes of one scaling point: the broker under test (started exactly like `memorystreamer bench
// --spawn` starts it, via src/bench/spawned-broker.ts, so its PID is ours to read /proc from) and the
// client processes holding idle connections (bench/lib/idle-clients.ts). Each is stopped by its PID.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnBroker } from '../../src/bench/spawned-broker.js';

export interface ScalingBroker {
  pid: number;
  /** host:port for runBench's external mode. */
  address: string;
  stop(): Promise<void>;
}

/**
 * `env`: broker settings as MEMORYSTREAMER_* variables. spawnBroker passes this process's
 * environment to the child when it spawns (synchronously), so they are set only around that call.
 */
export async function startScalingBroker(env: Record<string, string> = {}): Promise<ScalingBroker> {
  const dataDir = await mkdtemp(join(process.env.BENCH_DIR ?? tmpdir(), 'ms-scaling-'));
  try {
    const saved = Object.keys(env).map((name) => [name, process.env[name]] as const);
    Object.assign(process.env, env);
    const starting = spawnBroker(dataDir);
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    const child = await starting;
    return {
      pid: child.pid,
      address: `127.0.0.1:${child.port}`,
      async stop() {
        await child.stop();
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
}

export interface ProcMemory {
  /** Resident set now, bytes. */
  rss: number;
  /** Peak resident set since the process started (VmHWM), bytes. */
  peak: number;
}

export async function procMemory(pid: number): Promise<ProcMemory> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => {
    const match = new RegExp(`${name}:\\s+(\\d+) kB`).exec(status);
    if (match === null) throw new Error(`/proc/${pid}/status has no ${name}`);
    return Number(match[1]) * 1024;
  };
  return { rss: field('VmRSS'), peak: field('VmHWM') };
}

export interface IdleClients {
  stop(): Promise<void>;
}

const IDLE_PROCESSES = 4;

function waitForExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Opens `connections` idle connections (handshake done) to 127.0.0.1:port from 4 child processes. */
export async function openIdleConnections(port: number, connections: number): Promise<IdleClients> {
  const children: ChildProcess[] = [];
  const stop = async () => {
    await Promise.all(
      children.map(async (child) => {
        if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
          process.kill(child.pid, 'SIGTERM');
        }
        await waitForExit(child);
      }),
    );
  };
  try {
    await Promise.all(
      Array.from({ length: IDLE_PROCESSES }, async (_, i) => {
        const share = Math.floor(connections / IDLE_PROCESSES) + (i < connections % IDLE_PROCESSES ? 1 : 0);
        if (share === 0) return;
        const child = spawn(
          process.execPath,
          ['--import', 'tsx', 'bench/lib/idle-clients.ts', String(port), String(share)],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        );
        children.push(child);
        let stderr = '';
        child.stderr!.on('data', (chunk: Buffer) => {
          if (stderr.length < 2000) stderr += chunk.toString();
        });
        await new Promise<void>((resolve, reject) => {
          let stdout = '';
          child.stdout!.on('data', (chunk: Buffer) => {
            stdout += chunk.toString();
            if (stdout.startsWith('ready')) resolve();
          });
          child.once('exit', (code, signal) =>
            reject(
              new Error(
                `idle client process exited (${signal ?? `code ${code}`}) before holding ${share} connections: ${stderr.trim().split('\n').slice(0, 3).join(' ')}`,
              ),
            ),
          );
        });
      }),
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return { stop };
}
