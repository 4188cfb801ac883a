// The broker under attack: a real `memorystreamer serve` child process on port 0, with a data
// directory the battery owns (it survives a restart), explicit small limits passed as environment
// variables, a file-descriptor limit set by prlimit before it execs the broker, and its log written
// to a file (shown when an attack fails) instead of the battery's terminal.

import type { ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type SpawnedBroker, spawnBrokerProcess } from '../../src/bench/spawned-broker.js';

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
 * Starts the broker (the project's one spawner, src/bench/spawned-broker.ts, under `prlimit` so the
 * PID stays the broker's) and waits for its `--json` ready line (ports). Fails if it exits first or
 * is not ready within `readyTimeoutMs` (and then kills it by its PID).
 */
export async function startBroker(
  settings: BrokerSettings,
  dataDir: string,
  logFile: string,
  readyTimeoutMs = 30_000,
): Promise<RunningBroker> {
  const log = createWriteStream(logFile, { flags: 'a' });
  let spawned: SpawnedBroker;
  try {
    spawned = await spawnBrokerProcess({
      dataDir,
      wrapper: ['prlimit', `--nofile=${settings.nofileSoft}:${settings.nofileHard}`],
      env: { MEMORYSTREAMER_LOG_LEVEL: 'warn', MEMORYSTREAMER_LOG_FORMAT: 'json', ...settings.env },
      stderr: (text) => log.write(text),
      startupTimeoutMs: readyTimeoutMs,
    });
  } catch (error) {
    log.end();
    throw error;
  }
  const { child } = spawned;
  track(child);
  const exited = spawned.exited.then(({ code, signal }) => {
    log.end();
    return signal !== null ? signal : `exit code ${code}`;
  });
  if (spawned.adminPort === null) {
    await spawned.kill();
    throw new Error('the broker runs without its admin endpoint: the battery reads it');
  }
  return {
    pid: spawned.pid,
    port: spawned.port,
    adminPort: spawned.adminPort,
    dataDir,
    logFile,
    child,
    exited,
  };
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
