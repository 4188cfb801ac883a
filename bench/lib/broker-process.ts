// Starts a broker as a child process (`memorystreamer serve --port 0 --json`) so benchmarks measure
// it over real loopback TCP without sharing its event loop, and tests can signal and kill it.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processCpuSeconds } from '../../src/bench/cpu.js';

export interface BrokerProcess {
  port: number;
  /** Port of the admin HTTP endpoint (/metrics). */
  adminPort: number;
  pid: number;
  child: ChildProcess;
  /** SIGTERM, wait for the exit; resolves with the exit code. Removes the data directory it made. */
  stop(): Promise<number | null>;
}

/**
 * Starts `memorystreamer serve` as a child process (used by benchmarks and by tests that need a
 * real broker process: kill -9, signals). With `dataDir` the caller owns the directory (it survives
 * stop, for restarts); without, a temporary one is made and removed on stop.
 */
export async function startBrokerProcess(
  options: {
    dataDir?: string;
    port?: number;
    env?: Record<string, string>;
    /** Extra Node.js flags for the broker process (e.g. --cpu-prof). */
    nodeArgs?: string[];
    /** A TOML configuration file (`serve --config`), e.g. to change settings by SIGHUP later. */
    configFile?: string;
  } = {},
): Promise<BrokerProcess> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(process.env.BENCH_DIR ?? tmpdir(), 'ms-broker-')));
  const args = [
    ...(options.nodeArgs ?? []),
    '--import',
    'tsx',
    'src/cli/main.ts',
    'serve',
    '--admin-port',
    '0',
    '--port',
    String(options.port ?? 0),
    ...(options.configFile !== undefined ? ['--config', options.configFile] : []),
  ];
  const child = spawn(process.execPath, [...args, '--data-dir', dataDir, '--json'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, MEMORYSTREAMER_LOG_LEVEL: 'warn', ...options.env },
  });
  const { port, adminPort } = await new Promise<{ port: number; adminPort: number }>((resolve, reject) => {
    let buffered = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const line = buffered.split('\n')[0];
      if (buffered.includes('\n') && line !== undefined)
        resolve(JSON.parse(line) as { port: number; adminPort: number });
    });
    child.once('exit', (code) => reject(new Error(`broker exited with ${code}`)));
  });
  return {
    port,
    adminPort,
    pid: child.pid!,
    child,
    async stop() {
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      const code = await exited;
      if (options.dataDir === undefined) await rm(dataDir, { recursive: true, force: true });
      return code;
    },
  };
}

/** CPU seconds (user + system) a process has used, from /proc (src/bench/cpu.ts reads it). */
export async function cpuSeconds(pid: number): Promise<number> {
  const seconds = processCpuSeconds(pid);
  if (seconds === null) throw new Error(`cannot read the CPU time of process ${pid} from /proc`);
  return seconds;
}
