// A real broker in a child process for tests: `memorystreamer serve` from the sources (tsx), a free
// port unless one is chosen, a temporary data directory unless one is given, started once it
// listens, stopped by its PID, its directory removed. Its stderr is kept and its JSON log lines
// parsed, so a test can wait for a log line and say what the broker wrote when something fails.
// The process itself is started by the project's one spawner (src/bench/spawned-broker.ts).

import { spawn } from 'node:child_process';
import { onTestFinished } from 'vitest';
import {
  type SpawnBrokerOptions,
  type SpawnedBroker,
  serveCommand,
  spawnBrokerProcess,
} from '../../src/bench/spawned-broker.js';
import { makeTempDir, removeTempDir } from './temp-dir.js';

/** A JSON log line of the broker (`log.format = "json"`, which it uses when stderr is not a TTY). */
export interface BrokerLogLine {
  msg: string;
  level?: number | string;
  [field: string]: unknown;
}

export interface StartBrokerOptions extends Omit<SpawnBrokerOptions, 'stderr' | 'detached'> {
  /** MEMORYSTREAMER_LOG_LEVEL of the broker (default `warn`; `info` to see start-up lines). */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
}

export interface TestBroker extends SpawnedBroker {
  /** The data directory (made by the harness, or the one given). */
  readonly dataDir: string | undefined;
  /** Everything the broker wrote to stderr so far. */
  stderr(): string;
  /** Its JSON log lines so far. */
  logs(): BrokerLogLine[];
  /**
   * Waits for a log line with this message (or that passes the test) among the lines from index
   * `after` on (default all), and returns the first. Fails after `timeoutMs` (default 20 s), or
   * as soon as the broker has exited, with what it wrote.
   */
  waitForLog(
    match: string | ((line: BrokerLogLine) => boolean),
    options?: { after?: number; timeoutMs?: number },
  ): Promise<BrokerLogLine>;
  /**
   * SIGTERM (SIGKILL if it does not exit in time), waits for the exit and removes the data
   * directory when the harness made it; resolves with the exit code.
   */
  stop(): Promise<number | null>;
}

/**
 * Starts a broker; with neither `dataDir` nor `configFile` it gets a temporary data directory.
 * Started in a test body, it is also stopped when the test has finished (after its afterEach
 * hooks), if the test did not stop it; started in a hook, the matching after-hook stops it.
 */
export async function startBroker(options: StartBrokerOptions = {}): Promise<TestBroker> {
  const { logLevel, ...spawnOptions } = options;
  const made =
    options.dataDir === undefined && options.configFile === undefined
      ? await makeTempDir('ms-broker-')
      : null;
  const dataDir = made ?? options.dataDir;
  let stderr = '';
  let partial = '';
  const logs: BrokerLogLine[] = [];
  const onStderr = (text: string) => {
    stderr += text;
    const lines = (partial + text).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      try {
        logs.push(JSON.parse(line) as BrokerLogLine);
      } catch {
        // not a log line
      }
    }
  };
  let broker: SpawnedBroker;
  try {
    broker = await spawnBrokerProcess({
      ...spawnOptions,
      ...(dataDir !== undefined ? { dataDir } : {}),
      env: { MEMORYSTREAMER_LOG_LEVEL: logLevel ?? 'warn', ...options.env },
      stderr: onStderr,
    });
  } catch (error) {
    if (made !== null) await removeTempDir(made);
    throw error;
  }
  const stop = async (): Promise<number | null> => {
    const code = await broker.stop();
    if (made !== null) await removeTempDir(made);
    return code;
  };
  try {
    onTestFinished(async () => {
      await stop();
    });
  } catch {
    // Not in a test body (a hook, or outside a test): the caller stops it.
  }
  const status = () =>
    `broker ${broker.child.exitCode !== null || broker.child.signalCode !== null ? `exited (${broker.child.exitCode ?? broker.child.signalCode})` : 'running'}; stderr: ${stderr.slice(-2000)}`;
  return {
    ...broker,
    dataDir,
    stderr: () => stderr,
    logs: () => logs,
    async waitForLog(match, { after = 0, timeoutMs = 20_000 } = {}): Promise<BrokerLogLine> {
      const test = typeof match === 'string' ? (line: BrokerLogLine) => line.msg === match : match;
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = logs.slice(after).find(test);
        if (found !== undefined) return found;
        const gone = broker.child.exitCode !== null || broker.child.signalCode !== null;
        if (gone || Date.now() > deadline)
          throw new Error(
            `no log line ${typeof match === 'string' ? `"${match}"` : 'that matches'}${gone ? '' : ` within ${timeoutMs} ms`}; ${status()}; lines: ${logs.map((l) => l.msg).join(' | ')}`,
          );
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
    stop,
  };
}

/**
 * Runs `serve` where it must refuse to start: resolves with its exit code and what it wrote to
 * stderr (errors as people read them). A serve that starts after all (the failure under test) is
 * killed after 30 s.
 */
export function serveRefusal(
  options: Omit<StartBrokerOptions, 'logLevel'>,
): Promise<{ code: number | null; stderr: string }> {
  const { command, args, env } = serveCommand(options, { json: false });
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const stopper = setTimeout(() => child.kill('SIGKILL'), 30_000);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(stopper);
      resolve({ code, stderr });
    });
  });
}
