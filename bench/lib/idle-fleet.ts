// Processes around a broker under test, shared by bench/idle-connections.ts and bench/scaling.ts:
// the broker's memory from /proc, and client processes (bench/lib/idle-clients.ts) holding idle
// connections to it. Each client process is stopped by its PID.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';

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

/** Client processes the idle connections are spread over (each needs a file descriptor per connection). */
export const IDLE_CLIENT_PROCESSES = 4;

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
      Array.from({ length: IDLE_CLIENT_PROCESSES }, async (_, i) => {
        const share =
          Math.floor(connections / IDLE_CLIENT_PROCESSES) + (i < connections % IDLE_CLIENT_PROCESSES ? 1 : 0);
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
