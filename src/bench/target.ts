// The broker under test. `embedded`: a Broker in this process, listening on 127.0.0.1 so actor
// threads reach it over loopback TCP (the in-process transport cannot cross threads). `spawn`: a
// child process (spawned-broker.ts). `external`: an address given like every other command's.
// Each comes with an admin client for topic setup and a way to read the broker's CPU time.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '../client/client.js';
import { connect } from '../client/connect.js';
import { Broker } from '../embedded/broker.js';
import { ownProcessCpuSeconds, processCpuSeconds } from './cpu.js';
import type { BrokerMode } from './options.js';
import { spawnBroker } from './spawned-broker.js';

export interface BenchTarget {
  mode: BrokerMode;
  /** Addresses the actor threads connect to. */
  brokers: string[];
  admin: Client;
  /**
   * Cumulative CPU seconds to attribute to the broker: the child's own for `spawn`; for `embedded`
   * the whole process's, from which the orchestrator subtracts the actor threads; null when unknown.
   */
  cpuSeconds(): number | null;
  /** PID of a spawned broker. */
  pid: number | null;
  stop(): Promise<void>;
}

async function temporaryDataDir(parent: string | null): Promise<string> {
  return mkdtemp(join(parent ?? tmpdir(), 'memorystreamer-bench-'));
}

async function startEmbedded(parent: string | null): Promise<BenchTarget> {
  const dataDir = await temporaryDataDir(parent);
  let broker: Broker;
  try {
    broker = await Broker.start({ dataDir, host: '127.0.0.1', port: 0 });
  } catch (error) {
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
  const admin = broker.connect();
  return {
    mode: 'embedded',
    brokers: [`127.0.0.1:${broker.address!.port}`],
    admin,
    cpuSeconds: ownProcessCpuSeconds,
    pid: null,
    async stop() {
      await admin.close().catch(() => undefined);
      await broker.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

async function startSpawned(parent: string | null): Promise<BenchTarget> {
  const dataDir = await temporaryDataDir(parent);
  const cleanUp = () => rm(dataDir, { recursive: true, force: true });
  let child: Awaited<ReturnType<typeof spawnBroker>>;
  try {
    child = await spawnBroker(dataDir);
  } catch (error) {
    await cleanUp();
    throw error;
  }
  const address = `127.0.0.1:${child.port}`;
  let admin: Client;
  try {
    admin = await connect({ brokers: address, clientId: 'memorystreamer-bench', connectTimeoutMs: 5000 });
  } catch (error) {
    await child.stop();
    await cleanUp();
    throw error;
  }
  return {
    mode: 'spawn',
    brokers: [address],
    admin,
    cpuSeconds: () => processCpuSeconds(child.pid),
    pid: child.pid,
    async stop() {
      await admin.close().catch(() => undefined);
      await child.stop();
      await cleanUp();
    },
  };
}

async function useExternal(brokers: string): Promise<BenchTarget> {
  const admin = await connect({ brokers, clientId: 'memorystreamer-bench', connectTimeoutMs: 5000 });
  return {
    mode: 'external',
    brokers: brokers.split(',').filter((b) => b.trim() !== ''),
    admin,
    // Possibly another host: its CPU is not ours to read.
    cpuSeconds: () => null,
    pid: null,
    stop: () => admin.close(),
  };
}

export function startTarget(
  mode: BrokerMode,
  options: { brokers: string; dataDir: string | null },
): Promise<BenchTarget> {
  if (mode === 'embedded') return startEmbedded(options.dataDir);
  if (mode === 'spawn') return startSpawned(options.dataDir);
  return useExternal(options.brokers);
}
