// Starting and stopping the peer servers (nats-server, redis-server, RabbitMQ, epmd) for one
// comparison run: each gets a fresh temporary directory and free loopback ports, is stopped by its
// PID (SIGTERM, then SIGKILL after a grace period) and has its directory removed, also on error
// and on SIGINT/SIGTERM of this process.
import { spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Stoppable {
  name: string;
  stop(): Promise<void>;
}

export interface ServerProcess extends Stoppable {
  pid: number;
  dir: string;
}

const running = new Set<Stoppable>();

/**
 * Registers something to stop on SIGINT/SIGTERM or in stopAll. Returns it with `stop` made
 * idempotent (the first call does the work, later calls wait for it) and unregistering itself.
 */
export function track<T extends Stoppable>(item: T): T {
  let stopping: Promise<void> | null = null;
  const once: T = {
    ...item,
    stop() {
      running.delete(once);
      stopping ??= item.stop();
      return stopping;
    },
  };
  running.add(once);
  return once;
}

let allStopping: Promise<void> | null = null;
/**
 * Stops everything tracked, newest first. Concurrent calls (a signal arriving while an error
 * handler is already cleaning up) share one pass, so nobody exits before the servers are down.
 */
export function stopAll(): Promise<void> {
  allStopping ??= (async () => {
    while (running.size > 0) {
      for (const item of [...running].reverse()) await item.stop().catch(() => undefined);
    }
  })().finally(() => {
    allStopping = null;
  });
  return allStopping;
}

let handlersInstalled = false;
/** On SIGINT/SIGTERM, stop every tracked process before exiting, so no server outlives the run. */
export function stopAllOnSignals(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\n${signal}: stopping servers\n`);
      void stopAll().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
    });
  }
}

/** A port that was free on 127.0.0.1 a moment ago (the kernel picks it for listen(0)). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address !== 'object') throw new Error('no port from listen(0)');
  return address.port;
}

export function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(process.env.BENCH_DIR ?? tmpdir(), `ms-compare-${prefix}-`));
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function tail(path: string, lines: number): Promise<string> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.trim().split('\n').slice(-lines).join(' | ');
}

export interface StartOptions {
  name: string;
  command: string;
  args: string[];
  /** The directory the server works in; removed on stop. Its output goes to `<dir>/server.log`. */
  dir: string;
  /** Ready once this loopback port accepts connections. */
  readyPort: number;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

/** Spawns a server and waits until it accepts connections; throws (with its log tail) if it dies. */
export async function startServer(options: StartOptions): Promise<ServerProcess> {
  const logPath = join(options.dir, 'server.log');
  const log = openSync(logPath, 'a');
  const child = spawn(options.command, options.args, {
    cwd: options.dir,
    env: options.env ?? process.env,
    stdio: ['ignore', log, log],
    // Its own process group: a terminal's Ctrl-C reaches us, and we stop the server in order,
    // rather than the server dying mid-run under a client that still talks to it.
    detached: true,
  });
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const server = track<ServerProcess>({
    name: options.name,
    pid: child.pid ?? -1,
    dir: options.dir,
    async stop() {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        child.kill('SIGTERM');
        const grace = setTimeout(() => child.kill('SIGKILL'), 20_000);
        await exited;
        clearTimeout(grace);
      }
      // BENCH_KEEP_DIRS=1 keeps data and logs for a look after a failed run.
      if (process.env.BENCH_KEEP_DIRS !== '1') await rm(options.dir, { recursive: true, force: true });
    },
  });
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  // Set when the process dies before it is ready (a field, so the polling loop sees the change).
  const state: { failure: string | null } = { failure: null };
  void Promise.race([spawnError, exited.then(() => null)]).then((error) => {
    state.failure = error?.message ?? `exited with ${child.exitCode ?? child.signalCode}`;
  });
  while (true) {
    if (state.failure !== null) {
      const why = `${options.name} ${state.failure}: ${await tail(logPath, 5)}`;
      await server.stop();
      throw new Error(why);
    }
    if (await canConnect(options.readyPort)) return server;
    if (Date.now() > deadline) {
      const why = `${options.name} not listening on 127.0.0.1:${options.readyPort} after ${options.timeoutMs ?? 30_000} ms: ${await tail(logPath, 5)}`;
      await server.stop();
      throw new Error(why);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
