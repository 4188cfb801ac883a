// The broker under attack: a real `memorystreamer serve` child process on port 0, with a data
// directory the battery owns (it survives a restart), explicit small limits passed as environment
// variables, a file-descriptor limit set before exec, and its log written to a file (shown when an
// attack fails) instead of the battery's terminal.

import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface BrokerSettings {
  /** MEMORYSTREAMER_* variables: the limits under test. */
  env: Record<string, string>;
  /** Soft and hard RLIMIT_NOFILE of the broker process. */
  nofileSoft: number;
  nofileHard: number;
}

export interface RunningBroker {
  pid: number;
  port: number;
  adminPort: number;
  dataDir: string;
  logFile: string;
  child: ChildProcess;
  /** Resolves with the exit code or signal once the process has exited. */
  exited: Promise<string>;
}

/** Root of the repository (this file is test/battery/broker.ts). */
export const REPO_ROOT = join(import.meta.dirname, '..', '..');

/**
 * Starts the broker and waits for its `--json` ready line (ports). Fails if it exits first or is
 * not ready within `readyTimeoutMs` (and then kills it by its PID).
 */
export async function startBroker(
  settings: BrokerSettings,
  dataDir: string,
  logFile: string,
  readyTimeoutMs = 30_000,
): Promise<RunningBroker> {
  const log = createWriteStream(logFile, { flags: 'a' });
  const nodeArgs = ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--port', '0', '--admin-port', '0'];
  const args = [...nodeArgs, '--data-dir', dataDir, '--json'];
  // The limit is set by the shell that then execs node: the PID stays the broker's.
  const child = spawn(
    '/bin/sh',
    [
      '-c',
      `ulimit -Sn ${settings.nofileSoft} && ulimit -Hn ${settings.nofileHard} && exec "$0" "$@"`,
      process.execPath,
      ...args,
    ],
    {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        MEMORYSTREAMER_LOG_LEVEL: 'warn',
        MEMORYSTREAMER_LOG_FORMAT: 'json',
        ...settings.env,
      },
    },
  );
  track(child);
  child.stderr!.pipe(log);
  const exited = new Promise<string>((resolve) =>
    child.once('exit', (code, signal) => {
      log.end();
      resolve(signal !== null ? signal : `exit code ${code}`);
    }),
  );
  const ready = new Promise<{ port: number; adminPort: number }>((resolve, reject) => {
    let buffered = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      // `serve --json` writes one event per line; `listening` carries the ports, anything else
      // before it (an error at start) is the reason it will not be ready.
      for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        let event: { event?: string; port?: number; adminPort?: number };
        try {
          event = JSON.parse(line) as typeof event;
        } catch {
          continue;
        }
        if (
          event.event === 'listening' &&
          typeof event.port === 'number' &&
          typeof event.adminPort === 'number'
        ) {
          resolve({ port: event.port, adminPort: event.adminPort });
        } else {
          reject(new Error(`broker said ${line.slice(0, 500)} before it was ready`));
        }
      }
    });
    void exited.then((how) => reject(new Error(`broker exited before it was ready (${how})`)));
    setTimeout(
      () => reject(new Error(`broker not ready within ${readyTimeoutMs} ms`)),
      readyTimeoutMs,
    ).unref();
  });
  try {
    const { port, adminPort } = await ready;
    return { pid: child.pid!, port, adminPort, dataDir, logFile, child, exited };
  } catch (error) {
    killPid(child.pid);
    await exited;
    throw error;
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves with how it exited. */
export async function stopBroker(broker: RunningBroker, graceMs = 10_000): Promise<string> {
  if (broker.child.exitCode !== null || broker.child.signalCode !== null) return broker.exited;
  broker.child.kill('SIGTERM');
  const timer = setTimeout(() => killPid(broker.pid), graceMs);
  const how = await broker.exited;
  clearTimeout(timer);
  return how;
}

/**
 * Every process the battery started and has not seen exit (brokers and attackers): killed by PID
 * when the battery itself exits, however it exits, so none outlives it.
 */
export const livePids = new Set<number>();

export function track(child: ChildProcess): void {
  const pid = child.pid;
  if (pid === undefined) return;
  livePids.add(pid);
  child.once('exit', () => livePids.delete(pid));
}

export function killAllTracked(): void {
  for (const pid of livePids) killPid(pid);
  livePids.clear();
}

export function killPid(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** The last `lines` lines of a broker log file, for a failure report. */
export async function logTail(logFile: string, lines = 15): Promise<string[]> {
  try {
    const text = await readFile(logFile, 'utf8');
    return text.trimEnd().split('\n').slice(-lines);
  } catch {
    return [];
  }
}
