// The command line of a one-member etcd on 127.0.0.1 for trying and testing a cluster on one
// machine (`dev cluster`, the cluster benchmark, the tests' harness): its own data directory,
// client and peer ports, and the fast timings of a local cluster (leases floor at about 1 s).

export interface LocalEtcd {
  /** The member's name (also in --initial-cluster). */
  name: string;
  dataDir: string;
  clientPort: number;
  peerPort: number;
}

export function localEtcdArgs({ name, dataDir, clientPort, peerPort }: LocalEtcd): string[] {
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  return [
    `--name=${name}`,
    `--data-dir=${dataDir}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=${name}=${peer}`,
    '--heartbeat-interval=50',
    '--election-timeout=500',
  ];
}
