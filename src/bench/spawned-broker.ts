// A broker in a child process (`memorystreamer serve --json`, a free port by default), so it has its
// own event loop, its CPU use can be read from /proc, and it can be signalled and killed. The one
// spawner of the project: `bench --spawn` uses it, and so do the benchmarks (bench/lib) and the
// test harness (test/harness/broker.ts). It waits for the broker's first output line (printed once
// it listens), stops it by its PID (SIGTERM, then SIGKILL if it does not exit in time) and kills it
// if this process exits first.

import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { errorOf } from '../protocol/error-codes.js';

const STARTUP_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;
/** Stderr kept for the error of a broker that fails to start; later output is only passed on. */
const KEPT_STDERR_CHARS = 4096;

export interface SpawnBrokerOptions {
  /** `--data-dir`; without it the configuration file (or the default) says where. */
  dataDir?: string;
  /** `--port` (default 0, a free one); null leaves it to the configuration file. */
  port?: number | null;
  /** `--admin-port` (default 0, a free one); null leaves it to the configuration file. */
  adminPort?: number | null;
  /** `--host` (default 127.0.0.1); null leaves it to the configuration file. */
  host?: string | null;
  /** A TOML configuration file (`serve --config`), e.g. to change settings by SIGHUP later. */
  configFile?: string;
  /**
   * Environment on top of this process's, e.g. MEMORYSTREAMER_* settings; `undefined` removes a
   * variable. MEMORYSTREAMER_LOG_LEVEL is `warn` unless set here.
   */
  env?: Record<string, string | undefined>;
  /** Node.js flags for the broker process (e.g. --cpu-prof). */
  nodeArgs?: string[];
  /** A command the broker runs under, which then executes it: e.g. `['prlimit', '--nofile=512:512']`. */
  wrapper?: string[];
  /** Where the broker's stderr goes: to this process's stderr, or to a function (default: dropped). */
  stderr?: 'inherit' | ((text: string) => void);
  /**
   * Its own process group: Ctrl-C in the terminal reaches only this process, which can then stop
   * the broker when it is done with it, instead of the broker vanishing under running clients.
   */
  detached?: boolean;
  /** How long the broker may take to listen (default 20 s). */
  startupTimeoutMs?: number;
}

export interface SpawnedBroker {
  pid: number;
  port: number;
  /** Port of the admin HTTP endpoint, null when it is turned off. */
  adminPort: number | null;
  child: ChildProcess;
  /** Settles when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then SIGKILL if it does not exit in time; resolves with the exit code (null if killed). */
  stop(): Promise<number | null>;
  /** SIGKILL (kill -9), and wait for the exit. */
  kill(): Promise<void>;
}

/** The CLI entry next to this module, and the node flags it needs (tsx when running from sources). */
function cliCommand(): { script: string; execArgv: string[] } {
  if (!import.meta.url.endsWith('.ts')) {
    return { script: fileURLToPath(new URL('../cli/main.js', import.meta.url)), execArgv: [] };
  }
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  return { script: fileURLToPath(new URL('../cli/main.ts', import.meta.url)), execArgv: ['--import', tsx] };
}

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (hasExited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

function serveArguments(options: SpawnBrokerOptions, json: boolean): string[] {
  const args = ['serve'];
  const host = options.host === undefined ? '127.0.0.1' : options.host;
  const port = options.port === undefined ? 0 : options.port;
  const adminPort = options.adminPort === undefined ? 0 : options.adminPort;
  if (options.configFile !== undefined) args.push('--config', options.configFile);
  if (host !== null) args.push('--host', host);
  if (port !== null) args.push('--port', String(port));
  if (adminPort !== null) args.push('--admin-port', String(adminPort));
  if (options.dataDir !== undefined) args.push('--data-dir', options.dataDir);
  if (json) args.push('--json');
  return args;
}

/** The environment of the child: this process's, with `extra` on top (undefined removes). */
function childEnv(extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, MEMORYSTREAMER_LOG_LEVEL: 'warn' };
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

/**
 * The command line and environment of `memorystreamer serve` with these options. With `json` (what
 * spawnBrokerProcess uses) it prints its listening line and errors as JSON on stdout; without,
 * errors go to stderr as people read them (for a test of a serve that must refuse to start).
 */
export function serveCommand(
  options: SpawnBrokerOptions,
  { json = true }: { json?: boolean } = {},
): { command: string; args: string[]; env: NodeJS.ProcessEnv } {
  const { script, execArgv } = cliCommand();
  const node = [
    process.execPath,
    ...(options.nodeArgs ?? []),
    ...execArgv,
    script,
    ...serveArguments(options, json),
  ];
  const [command, ...args] = [...(options.wrapper ?? []), ...node];
  return { command: command!, args, env: childEnv(options.env ?? {}) };
}

/** A line of `serve --json` output, or null when it is not a JSON object. */
function parseLine(line: string): { event?: unknown; port?: unknown; adminPort?: unknown } | null {
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null ? value : null;
  } catch {
    return null;
  }
}

/** Starts `memorystreamer serve` in a child process and resolves once it listens. */
export async function spawnBrokerProcess(options: SpawnBrokerOptions = {}): Promise<SpawnedBroker> {
  const { command, args, env } = serveCommand(options);
  const child = spawn(command, args, {
    stdio: ['ignore', 'pipe', options.stderr === 'inherit' ? 'inherit' : 'pipe'],
    env,
    detached: options.detached ?? false,
  });
  // A process that could not be started at all emits only 'error'.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', () => {
      if (child.pid === undefined) resolve({ code: null, signal: null });
    });
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  void exited.then(() => process.off('exit', killOnExit));
  let stderr = '';
  const onStderr = typeof options.stderr === 'function' ? options.stderr : null;
  child.stderr?.on('data', (chunk: Buffer) => {
    const text = chunk.toString();
    if (stderr.length < KEPT_STDERR_CHARS) stderr += text;
    onStderr?.(text);
  });
  const stop = async (): Promise<number | null> => {
    if (!hasExited(child)) {
      child.kill('SIGTERM');
      if (!(await waitForExit(child, STOP_TIMEOUT_MS))) child.kill('SIGKILL');
    }
    return (await exited).code;
  };
  const kill = async (): Promise<void> => {
    if (!hasExited(child)) child.kill('SIGKILL');
    await exited;
  };
  const timeoutMs = options.startupTimeoutMs ?? STARTUP_TIMEOUT_MS;
  try {
    const listening = await new Promise<{ port: number; adminPort: number | null }>((resolve, reject) => {
      let stdout = '';
      const timer = setTimeout(
        () => reject(new Error(`the spawned broker did not start within ${timeoutMs} ms: ${stderr.trim()}`)),
        timeoutMs,
      );
      child.stdout!.on('data', (chunk: Buffer) => {
        // Later output (the `stopping` and `stopped` lines) is only drained.
        if (stdout.includes('\n')) return;
        stdout += chunk.toString();
        const newline = stdout.indexOf('\n');
        if (newline < 0) return;
        clearTimeout(timer);
        // The first line is `listening` with the ports; anything else (an error at start, which
        // `--json` prints on stdout) is the reason it will not listen.
        const first = parseLine(stdout.slice(0, newline));
        if (first?.event === 'listening' && typeof first.port === 'number') {
          const adminPort = typeof first.adminPort === 'number' ? first.adminPort : null;
          resolve({ port: first.port, adminPort });
        } else {
          reject(new Error(`the spawned broker printed ${JSON.stringify(stdout.slice(0, 500))}`));
        }
      });
      // 'close', not 'exit': by then all it wrote to stderr has been read, for the error.
      child.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
        clearTimeout(timer);
        reject(
          errorOf(
            'BROKER_NOT_AVAILABLE',
            `the spawned broker exited (${signal ?? `code ${code}`}) before listening: ${stderr.trim()}`,
          ),
        );
      });
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
    return {
      pid: child.pid!,
      port: listening.port,
      adminPort: listening.adminPort,
      child,
      exited,
      stop,
      kill,
    };
  } catch (error) {
    await kill();
    throw error;
  }
}

/** `bench --spawn`'s broker: a free port, `dataDir`, extra `env` (e.g. MEMORYSTREAMER_* settings). */
export function spawnBroker(dataDir: string, env: Record<string, string> = {}): Promise<SpawnedBroker> {
  return spawnBrokerProcess({ dataDir, env, detached: true });
}
