// `memorystreamer dev cluster`: a cluster on this machine to try things with: etcd and N brokers
// (`serve --cluster`), each with its own data directory and ports, all logs in one directory.
// Ctrl-C (or SIGTERM) stops them all, brokers first, each by its PID. Not for production: one
// etcd member, everything on 127.0.0.1.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { type SpawnedBroker, spawnBrokerProcess } from '../../bench/spawned-broker.js';
import { errorOf } from '../../protocol/error-codes.js';
import type { CliContext } from '../context.js';
import { localEtcdArgs } from '../local-etcd.js';
import { parseIntegerOption } from '../options.js';

interface DevClusterFlags {
  brokers: string;
  port: string;
  etcdPort: string;
  dir: string;
}

const ETCD_START_MS = 20_000;

/** Waits until etcd answers its health check, or fails with what it wrote. */
async function waitForEtcd(port: number, child: ChildProcess, log: string): Promise<void> {
  const deadline = Date.now() + ETCD_START_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null)
      throw errorOf('CONTROL_PLANE_UNAVAILABLE', `etcd exited with code ${child.exitCode}; see ${log}`);
    try {
      const response = await fetch(`http://127.0.0.1:${port}/health`);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolveWait) => setTimeout(resolveWait, 100));
  }
  throw errorOf(
    'CONTROL_PLANE_UNAVAILABLE',
    `etcd did not become healthy within ${ETCD_START_MS} ms; see ${log}`,
  );
}

function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolveStop) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolveStop();
    });
    child.kill('SIGTERM');
  });
}

export function registerDev(program: Command, context: CliContext): void {
  const dev = program.command('dev').description('tools for trying MemoryStreamer on this machine');
  dev
    .command('cluster')
    .description('run etcd and several brokers as a local cluster until Ctrl-C')
    .option('--brokers <n>', 'brokers to start (ids 1..n)', '3')
    .option(
      '--port <port>',
      'client port of broker 1; broker i listens on port + 10·(i−1), its admin endpoint one above',
      '7400',
    )
    .option('--etcd-port <port>', "etcd's client port (its peer port is the next one)", '2379')
    .option('--dir <dir>', 'data directories and logs', './memorystreamer-cluster')
    .addHelpText(
      'after',
      '\nExamples:\n  memorystreamer dev cluster\n  memorystreamer dev cluster --brokers 5 --port 9000 --dir /tmp/ms-cluster\n\nNeeds etcd (Debian: apt-get install etcd-server).',
    )
    .action(async (flags: DevClusterFlags) => {
      const count = parseIntegerOption('--brokers', flags.brokers, 1, 9);
      const basePort = parseIntegerOption('--port', flags.port, 1024, 65535 - 10 * count);
      const etcdPort = parseIntegerOption('--etcd-port', flags.etcdPort, 1024, 65534);
      if (spawnSync('etcd', ['--version'], { stdio: 'ignore' }).status !== 0)
        throw errorOf(
          'INVALID_CONFIG',
          'etcd is not installed or not on PATH (Debian: apt-get install etcd-server)',
        );
      const dir = resolve(flags.dir);
      await mkdir(dir, { recursive: true });
      const etcdLog = join(dir, 'etcd.log');
      const etcdOut = createWriteStream(etcdLog, { flags: 'a' });
      const etcd = spawn(
        'etcd',
        localEtcdArgs({
          name: 'dev',
          dataDir: join(dir, 'etcd'),
          clientPort: etcdPort,
          peerPort: etcdPort + 1,
        }),
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      etcd.stdout?.pipe(etcdOut);
      etcd.stderr?.pipe(etcdOut);
      const brokers: SpawnedBroker[] = [];
      const logs: Array<ReturnType<typeof createWriteStream>> = [etcdOut];
      const stopAll = async () => {
        for (const broker of brokers.splice(0).reverse()) await broker.stop();
        await stopProcess(etcd);
        for (const log of logs) log.end();
      };
      const stopped = new Promise<string>((resolveStopped) => {
        const onSignal = (signal: NodeJS.Signals) => {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
          resolveStopped(signal);
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
      });
      try {
        await waitForEtcd(etcdPort, etcd, etcdLog);
        const cluster = `etcd://127.0.0.1:${etcdPort}/dev`;
        for (let id = 1; id <= count; id++) {
          const port = basePort + 10 * (id - 1);
          const log = createWriteStream(join(dir, `broker-${id}.log`), { flags: 'a' });
          logs.push(log);
          brokers.push(
            await spawnBrokerProcess({
              dataDir: join(dir, `broker-${id}`),
              port,
              adminPort: port + 1,
              env: {
                MEMORYSTREAMER_CLUSTER_ETCD: cluster,
                MEMORYSTREAMER_CLUSTER_BROKER_ID: String(id),
                MEMORYSTREAMER_CLUSTER_ADVERTISE: `127.0.0.1:${port}`,
                MEMORYSTREAMER_LOG_LEVEL: 'info',
                MEMORYSTREAMER_LOG_FORMAT: 'json',
              },
              stderr: (text) => log.write(text),
            }),
          );
        }
      } catch (error) {
        await stopAll();
        throw error;
      }
      const addresses = brokers.map((broker) => `127.0.0.1:${broker.port}`);
      context.print(
        {
          event: 'ready',
          etcd: { port: etcdPort, pid: etcd.pid ?? null },
          brokers: brokers.map((broker, i) => ({
            id: i + 1,
            address: addresses[i],
            adminPort: broker.adminPort,
            pid: broker.pid,
          })),
          dir,
        },
        [
          `local cluster: etcd 127.0.0.1:${etcdPort} and ${count} broker(s)`,
          ...brokers.map(
            (broker, i) =>
              `  broker ${i + 1}  ${addresses[i]}  status page http://127.0.0.1:${broker.adminPort}/  pid ${broker.pid}`,
          ),
          `data and logs in ${dir}`,
          `try: memorystreamer --broker ${addresses.join(',')} topic create orders --partitions 3 --replication-factor ${Math.min(3, count)}`,
          'Ctrl-C stops them all',
        ].join('\n'),
      );
      const signal = await stopped;
      await stopAll();
      context.print({ event: 'stopped', signal }, `stopped (${signal})`);
    });
}
