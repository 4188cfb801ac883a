// Where the cluster's metadata lives in etcd. Every key is under /memorystreamer/<cluster name>/:
//
//   cluster-id                      the cluster's UUID, written once by the first broker
//                                   (create-if-absent); every data directory records it
//   brokers/<id>                    BrokerRegistration (JSON), attached to that broker's lease:
//                                   it disappears when the broker stops heartbeating
//   controller                      { brokerId } attached to the controller's lease; the key's
//                                   create revision is the controller epoch (see control-plane.ts)
//   topics/<topic>                  TopicRecord (JSON)
//   partitions/<topic>/<partition>  PartitionState (JSON): replicas, leader, leader epoch, ISR
//   drained-brokers                 { brokers: [ids] }: brokers the controller chooses as leader
//                                   only when no other in-sync replica is live (broker drain)
//   config/current                  the cluster-wide broker settings (ConfigVersion JSON)
//   config/history/<version>        every version ever written, <version> zero-padded to 12 digits
//   config/topics/<topic>           the current configuration version of one topic
//   config/sequence                 the last version number given out (one sequence for every scope)
//   users/<name>                    a user's SCRAM credentials, with authentication on (written and
//                                   read by security/etcd-user-store.ts; the metadata cache skips them)
//   users-decoy-secret              the salt secret every broker shows an unknown user
//   acls/<id>                       one access control entry, with authorization on (<id>: hex
//                                   SHA-256 of its fields; written and read by
//                                   security/etcd-acl-store.ts; the metadata cache skips them)
//   tenant-registry                 the tenants, their principals and quotas, as tenants.json
//                                   (security/etcd-tenant-store.ts; the metadata cache skips it)
//
// Topic names cannot contain '/', so the prefixes never overlap.

export const ROOT = '/memorystreamer/';

export function clusterPrefix(name: string): string {
  return `${ROOT}${name}/`;
}

export const KEYS = {
  clusterId: 'cluster-id',
  controller: 'controller',
  brokersPrefix: 'brokers/',
  broker: (id: number) => `brokers/${id}`,
  topicsPrefix: 'topics/',
  topic: (name: string) => `topics/${name}`,
  partitionsPrefix: 'partitions/',
  topicPartitionsPrefix: (topic: string) => `partitions/${topic}/`,
  partition: (topic: string, partition: number) => `partitions/${topic}/${partition}`,
  drainedBrokers: 'drained-brokers',
  configCurrent: 'config/current',
  configHistoryPrefix: 'config/history/',
  configVersion: (version: number) => `config/history/${String(version).padStart(12, '0')}`,
} as const;

/** `partitions/<topic>/<n>` → [topic, n], or null for any other key. */
export function parsePartitionKey(key: string): [string, number] | null {
  if (!key.startsWith(KEYS.partitionsPrefix)) return null;
  const rest = key.slice(KEYS.partitionsPrefix.length);
  const slash = rest.lastIndexOf('/');
  if (slash <= 0) return null;
  const partition = Number(rest.slice(slash + 1));
  if (!Number.isSafeInteger(partition) || partition < 0 || String(partition) !== rest.slice(slash + 1))
    return null;
  return [rest.slice(0, slash), partition];
}
