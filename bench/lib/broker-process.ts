// Starts a broker as a child process (`memorystreamer serve --port 0 --json`, the project's one
// spawner in src/bench/spawned-broker.ts) so benchmarks measure it over real loopback TCP without
// sharing its event loop.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processCpuSeconds } from '../../src/bench/cpu.js';
import { type SpawnedBroker, spawnBrokerProcess } from '../../src/bench/spawned-broker.js';

export interface BrokerProcess {
  port: number;
  /** Port of the admin HTTP endpoint (/metrics). */
  adminPort: number;
  pid: number;
  child: SpawnedBroker['child'];
  /** SIGTERM, wait for the exit; resolves with the exit code. Removes the data directory it made. */
  stop(): Promise<number | null>;
}

/**
 * Starts `memorystreamer serve` as a child process, its stderr on this process's. With `dataDir`
 * the caller owns the directory (it survives stop, for restarts); without, a temporary one is made
 * (under BENCH_DIR when set) and removed on stop.
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
  const removeMade = async () => {
    if (options.dataDir === undefined) await rm(dataDir, { recursive: true, force: true });
  };
  let broker: SpawnedBroker;
  try {
    broker = await spawnBrokerProcess({
      dataDir,
      port: options.port ?? 0,
      stderr: 'inherit',
      ...(options.env !== undefined ? { env: options.env } : {}),
      ...(options.nodeArgs !== undefined ? { nodeArgs: options.nodeArgs } : {}),
      ...(options.configFile !== undefined ? { configFile: options.configFile } : {}),
    });
  } catch (error) {
    await removeMade();
    throw error;
  }
  const adminPort = broker.adminPort;
  if (adminPort === null) {
    await broker.stop();
    await removeMade();
    throw new Error(
      'the broker runs without its admin endpoint (admin.enabled = false): benchmarks read /metrics',
    );
  }
  return {
    port: broker.port,
    adminPort,
    pid: broker.pid,
    child: broker.child,
    async stop() {
      const code = await broker.stop();
      await removeMade();
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
