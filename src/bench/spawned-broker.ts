// `--spawn`: a broker in a child process (`memorystreamer serve` on a free port, temporary data
// directory), so it has its own event loop and its CPU use can be read from /proc. It is stopped by
// its PID, also when the bench fails, and killed if the bench process exits first.

import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { errorOf } from '../protocol/error-codes.js';

const STARTUP_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;

export interface SpawnedBroker {
  pid: number;
  port: number;
  /** SIGTERM, then SIGKILL if it does not exit in time. */
  stop(): Promise<void>;
}

/** The CLI entry next to this module, and the node flags it needs (tsx when running from sources). */
function cliCommand(): { script: string; execArgv: string[] } {
  if (!import.meta.url.endsWith('.ts')) {
    return { script: fileURLToPath(new URL('../cli/main.js', import.meta.url)), execArgv: [] };
  }
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  return { script: fileURLToPath(new URL('../cli/main.ts', import.meta.url)), execArgv: ['--import', tsx] };
}

function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** `env`: extra variables for the broker process, e.g. MEMORYSTREAMER_* settings. */
export async function spawnBroker(dataDir: string, env: Record<string, string> = {}): Promise<SpawnedBroker> {
  const { script, execArgv } = cliCommand();
  const child = spawn(
    process.execPath,
    [
      ...execArgv,
      script,
      'serve',
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--admin-port',
      '0',
      '--data-dir',
      dataDir,
      '--json',
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, MEMORYSTREAMER_LOG_LEVEL: 'warn', ...env },
      // Its own process group: Ctrl-C in the terminal reaches the bench, which drains, reports and
      // then stops the broker, instead of the broker vanishing under the running consumers.
      detached: true,
    },
  );
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    // Kept for the error message if it fails to start; later output is only drained.
    if (stderr.length < 4096) stderr += chunk.toString();
  });
  const stop = async () => {
    process.off('exit', killOnExit);
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    if (!(await waitForExit(child, STOP_TIMEOUT_MS))) {
      child.kill('SIGKILL');
      await waitForExit(child, STOP_TIMEOUT_MS);
    }
  };
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let stdout = '';
      const timer = setTimeout(
        () => reject(new Error(`the spawned broker did not start within ${STARTUP_TIMEOUT_MS} ms`)),
        STARTUP_TIMEOUT_MS,
      );
      child.stdout!.on('data', (chunk: Buffer) => {
        if (stdout.includes('\n')) return;
        stdout += chunk.toString();
        const newline = stdout.indexOf('\n');
        if (newline < 0) return;
        clearTimeout(timer);
        try {
          resolve((JSON.parse(stdout.slice(0, newline)) as { port: number }).port);
        } catch {
          reject(new Error(`the spawned broker printed ${JSON.stringify(stdout.slice(0, 200))}`));
        }
      });
      child.once('exit', (code, signal) => {
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
    return { pid: child.pid!, port, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
