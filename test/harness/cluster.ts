// A cluster for tests: a real etcd (etcd.ts) and N brokers on it, with broker ids 1..N, free
// loopback ports and their own data directories. Two shapes, one setup:
//
//   startCluster()        N `memorystreamer serve --cluster` processes (broker.ts): kill -9, restart
//   startNodeCluster()    N broker nodes in this process (BrokerNode + clusterPart): their state is
//                         in reach of the test
//
// Start one in beforeAll and stop it in afterAll (stop() stops the brokers, then etcd, and removes
// every directory); a test can also start one in its body and stop it in a `finally`.

import { join } from 'node:path';
import { BrokerNode, type BrokerNodeOptions } from '../../src/broker/broker-node.js';
import { clusterPart } from '../../src/cluster/cluster-node.js';
import { type StartBrokerOptions, startBroker, type TestBroker } from './broker.js';
import { type EtcdProcess, freePort, startEtcd } from './etcd.js';
import { makeTempDir, removeTempDir } from './temp-dir.js';

export interface ClusterOptions {
  /** How many brokers (default 3); their ids are 1..brokers. */
  brokers?: number;
  /** The cluster's key prefix in etcd (default `test`). */
  name?: string;
  /** Seconds a broker's registration outlives it (default 1 for processes, 2 for nodes). */
  leaseTtlSeconds?: number;
}

interface ClusterBase {
  readonly etcd: EtcdProcess;
  /** `etcd://127.0.0.1:<port>/<name>`, what `--cluster` takes. */
  readonly url: string;
  /** host:port of broker `id` (1-based). */
  address(id: number): string;
  /** Every broker's host:port, in id order. */
  addresses(): string[];
  /** The data directory of broker `id` (it outlives a stop or kill of the broker, until stop()). */
  dataDir(id: number): string;
  /** Stops every broker still running, then etcd, and removes their directories. */
  stop(): Promise<void>;
}

export interface ProcessCluster extends ClusterBase {
  /** Broker `id` is `brokers[id - 1]`. */
  readonly brokers: TestBroker[];
  /** Starts broker `id` again (after a stop or kill) on its port and data directory. */
  restart(id: number): Promise<TestBroker>;
}

export interface NodeCluster extends ClusterBase {
  /** Broker `id` is `nodes[id - 1]`. */
  readonly nodes: BrokerNode[];
}

function clusterUrl(etcd: EtcdProcess | string, name: string): string {
  const endpoint = typeof etcd === 'string' ? etcd : etcd.endpoint;
  return `${endpoint.replace('http://', 'etcd://')}/${name}`;
}

/** Etcd, then `count` brokers by `start`; on a failure what started is stopped again. */
async function assemble<T>(
  options: ClusterOptions,
  start: (etcd: EtcdProcess, id: number, port: number, root: string) => Promise<T>,
  stopOne: (broker: T) => Promise<unknown>,
): Promise<{ etcd: EtcdProcess; root: string; brokers: T[]; ports: number[]; stop(): Promise<void> }> {
  const etcd = await startEtcd();
  const root = await makeTempDir('ms-cluster-');
  const brokers: T[] = [];
  const ports: number[] = [];
  const stop = async () => {
    for (const broker of brokers) await stopOne(broker);
    await etcd.stop();
    await removeTempDir(root);
  };
  try {
    for (let id = 1; id <= (options.brokers ?? 3); id++) {
      const port = await freePort();
      ports.push(port);
      brokers.push(await start(etcd, id, port, root));
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { etcd, root, brokers, ports, stop };
}

/** Etcd and N `serve --cluster` processes (settings through MEMORYSTREAMER_CLUSTER_*). */
export async function startCluster(
  options: ClusterOptions & Pick<StartBrokerOptions, 'logLevel'> = {},
): Promise<ProcessCluster> {
  const name = options.name ?? 'test';
  const envOf = (etcd: EtcdProcess, id: number, port: number): Record<string, string> => ({
    MEMORYSTREAMER_CLUSTER_ETCD: clusterUrl(etcd, name),
    MEMORYSTREAMER_CLUSTER_BROKER_ID: String(id),
    MEMORYSTREAMER_CLUSTER_ADVERTISE: `127.0.0.1:${port}`,
    MEMORYSTREAMER_CLUSTER_LEASE_TTL: `${options.leaseTtlSeconds ?? 1}s`,
  });
  const logLevel = options.logLevel !== undefined ? { logLevel: options.logLevel } : {};
  const started = await assemble(
    options,
    (etcd, id, port, root) =>
      startBroker({ port, dataDir: join(root, `b${id}`), env: envOf(etcd, id, port), ...logLevel }),
    (broker) => broker.stop(),
  );
  const { etcd, brokers, ports } = started;
  const dataDir = (id: number) => join(started.root, `b${id}`);
  return {
    etcd,
    url: clusterUrl(etcd, name),
    brokers,
    address: (id) => `127.0.0.1:${ports[id - 1]}`,
    addresses: () => ports.map((port) => `127.0.0.1:${port}`),
    dataDir,
    async restart(id) {
      const port = ports[id - 1]!;
      const broker = await startBroker({
        port,
        dataDir: dataDir(id),
        env: envOf(etcd, id, port),
        ...logLevel,
      });
      brokers[id - 1] = broker;
      return broker;
    },
    stop: started.stop,
  };
}

/** Etcd and N broker nodes in this process, each with its cluster part. */
export async function startNodeCluster(
  options: ClusterOptions &
    Pick<BrokerNodeOptions, 'logger'> & {
      /** The etcd endpoint broker `id` uses (default etcd's own): a proxy in between, say. */
      etcdEndpointFor?: (id: number, etcd: EtcdProcess) => Promise<string>;
    } = {},
): Promise<NodeCluster> {
  const name = options.name ?? 'test';
  const started = await assemble(
    options,
    async (etcd, id, port, root) =>
      BrokerNode.start(
        {
          dataDir: join(root, `b${id}`),
          port,
          brokerId: id,
          memoryTrim: false,
          raiseFileLimit: false,
          ...(options.logger !== undefined ? { logger: options.logger } : {}),
        },
        [
          clusterPart({
            cluster: clusterUrl((await options.etcdEndpointFor?.(id, etcd)) ?? etcd, name),
            brokerId: id,
            advertise: `127.0.0.1:${port}`,
            leaseTtlSeconds: options.leaseTtlSeconds ?? 2,
          }),
        ],
      ),
    // Stopping a stopped node is a no-op, so a test may stop one itself.
    (node) => node.stop({ deadlineMs: 500 }),
  );
  const { etcd, brokers: nodes, ports } = started;
  return {
    etcd,
    url: clusterUrl(etcd, name),
    nodes,
    address: (id) => `127.0.0.1:${ports[id - 1]}`,
    addresses: () => ports.map((port) => `127.0.0.1:${port}`),
    dataDir: (id) => join(started.root, `b${id}`),
    stop: started.stop,
  };
}
