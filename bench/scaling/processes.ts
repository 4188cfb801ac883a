// The broker of one scaling point, started exactly like `memorystreamer bench --spawn` starts it
// (src/bench/spawned-broker.ts), so its PID is ours to read /proc from; stopped by its PID.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnBroker } from '../../src/bench/spawned-broker.js';

export interface ScalingBroker {
  pid: number;
  /** host:port for runBench's external mode. */
  address: string;
  stop(): Promise<void>;
}

/** `env`: broker settings as MEMORYSTREAMER_* variables for the broker process. */
export async function startScalingBroker(env: Record<string, string> = {}): Promise<ScalingBroker> {
  const dataDir = await mkdtemp(join(process.env.BENCH_DIR ?? tmpdir(), 'ms-scaling-'));
  try {
    const child = await spawnBroker(dataDir, env);
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
