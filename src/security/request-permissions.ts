// What each request needs to be allowed: one table, command name → the (operation, resource) pairs
// it needs, read from the decoded request. Every command of the registry has an entry (the type
// says so, and test/security/request-permissions.test.ts checks every opcode of the wire), so a
// new command cannot slip through unchecked. Answers that list topics or groups are filtered to
// what the principal may describe.

import type { CommandName, RequestOf, ResponseOf } from '../protocol/commands/registry.js';
import type { OpcodeName } from '../protocol/opcodes.js';
import { type AclOperation, type AclResource, type AclResourceType, CLUSTER_RESOURCE } from './acl.js';

/** One operation on one resource; `or`: another that allows the request instead. */
export interface Requirement {
  readonly operation: AclOperation;
  readonly resource: AclResource;
  readonly or?: Requirement | AnyOfType;
}

/** Allowed when the principal may do `operation` on some resource of `type` (see AclMatcher.allowsSome). */
export interface AnyOfType {
  readonly operation: AclOperation;
  readonly anyOfType: AclResourceType;
}

const NONE: readonly Requirement[] = [];
const CLUSTER: AclResource = { type: 'cluster', name: CLUSTER_RESOURCE };

function topic(operation: AclOperation, name: string): Requirement {
  return { operation, resource: { type: 'topic', name } };
}
function group(operation: AclOperation, name: string): Requirement {
  return { operation, resource: { type: 'group', name } };
}
function cluster(operation: AclOperation): readonly Requirement[] {
  return [{ operation, resource: CLUSTER }];
}
function distinctTopics(operation: AclOperation, names: Iterable<string>): Requirement[] {
  return [...new Set(names)].map((name) => topic(operation, name));
}

type PermissionTable = { readonly [K in CommandName]: (request: RequestOf<K>) => readonly Requirement[] };

/** Operations as Kafka checks them for the like request. */
export const REQUEST_PERMISSIONS: PermissionTable = {
  ping: () => NONE,
  // Create on the topic, or on the cluster (any topic).
  createTopic: (r) => [{ ...topic('create', r.name), or: { operation: 'create', resource: CLUSTER } }],
  alterTopic: (r) => [
    topic('alter', r.name),
    ...(r.config !== undefined && Object.keys(r.config).length > 0 ? [topic('alter_configs', r.name)] : []),
  ],
  deleteTopic: (r) => [topic('delete', r.name)],
  // The list is filtered to the topics the principal may describe (filterResponse).
  listTopics: () => NONE,
  describeTopic: (r) => [topic('describe', r.name)],
  // Named topics must be describable; without names, every topic, filtered (filterResponse).
  metadata: (r) => distinctTopics('describe', r.topics ?? []),
  produce: (r) => [topic('write', r.topic)],
  fetch: (r) => [topic('read', r.topic)],
  listOffsets: (r) => [topic('describe', r.topic)],
  // As Kafka: idempotent_write on the cluster, or write on some topic.
  initProducerId: () => [
    { operation: 'idempotent_write', resource: CLUSTER, or: { operation: 'write', anyOfType: 'topic' } },
  ],
  readStream: (r) => [topic('read', r.topic)],
  subscribe: (r) => [topic('read', r.topic)],
  // Only a channel this connection opened (with read on its topic).
  unsubscribe: () => NONE,
  joinGroup: (r) => [group('read', r.groupId), ...distinctTopics('describe', r.topics)],
  heartbeat: (r) => [group('read', r.groupId)],
  leaveGroup: (r) => [group('read', r.groupId)],
  commitOffsets: (r) => [
    group('read', r.groupId),
    ...distinctTopics(
      'read',
      r.offsets.map((o) => o.topic),
    ),
  ],
  fetchOffsets: (r) => [group('describe', r.groupId)],
  // The list is filtered to the groups the principal may describe (filterResponse).
  listGroups: () => NONE,
  describeGroup: (r) => [group('describe', r.groupId)],
  findCoordinator: (r) => [group('describe', r.groupId)],
  configSet: () => cluster('alter_configs'),
  configHistory: (r) =>
    r.topic !== undefined && r.topic !== null
      ? [topic('describe_configs', r.topic)]
      : cluster('describe_configs'),
  configRollback: () => cluster('alter_configs'),
  reassignPartitions: () => cluster('alter'),
  reassignmentStatus: () => cluster('describe'),
  drainBroker: () => cluster('alter'),
  electLeaders: () => cluster('alter'),
  verifyPartition: () => cluster('alter'),
  brokerHeartbeat: () => cluster('cluster_action'),
};

/** What a request of `name` needs. */
export function requirementsOf<K extends CommandName>(
  name: K,
  request: RequestOf<K>,
): readonly Requirement[] {
  return (REQUEST_PERMISSIONS[name] as (request: RequestOf<K>) => readonly Requirement[])(request);
}

/**
 * The opcodes outside the command registry, and how each is authorized: by the connection layer
 * itself (a rule saying why), or by static requirements checked before it runs.
 */
export const OPCODE_PERMISSIONS: {
  readonly [K in OpcodeName]?: { readonly checkedBy: string } | readonly Requirement[];
} = {
  // Reserved opcodes no command answers: the broker refuses them (UNKNOWN_OPCODE) before any check.
  STREAM_INFO: { checkedBy: 'not served (UNKNOWN_OPCODE)' },
  SYNC_GROUP: { checkedBy: 'not served (UNKNOWN_OPCODE)' },
  HANDSHAKE: { checkedBy: 'connection setup, before any principal exists' },
  GOAWAY: { checkedBy: 'sent by the broker only' },
  THROTTLE: { checkedBy: 'sent by the broker only' },
  PUSH_BATCH: { checkedBy: 'sent by the broker only' },
  CREDIT: { checkedBy: 'credit for a channel the connection opened (SUBSCRIBE checked read on its topic)' },
  AUTHENTICATE_START: { checkedBy: 'authentication itself' },
  AUTHENTICATE_FINISH: { checkedBy: 'authentication itself' },
  USER_LIST: { checkedBy: 'super-users only (src/security/broker-authenticator.ts)' },
  USER_ALTER: { checkedBy: 'super-users only (src/security/broker-authenticator.ts)' },
  TENANT_LIST: { checkedBy: 'super-users only (src/broker/quotas/tenant-quotas.ts)' },
  TENANT_ALTER: { checkedBy: 'super-users only (src/broker/quotas/tenant-quotas.ts)' },
  ACL_LIST: cluster('describe'),
  ACL_ALTER: cluster('alter'),
  REPLICA_FETCH: cluster('cluster_action'),
  OFFSETS_FOR_LEADER_EPOCH: cluster('cluster_action'),
  SEGMENT_ROOTS: cluster('cluster_action'),
  SEGMENT_CHUNK_DIGESTS: cluster('cluster_action'),
  SEGMENT_RANGE: cluster('cluster_action'),
};

/** Broker-to-broker requests (replication, anti-entropy): cluster_action on the cluster. */
export const BROKER_TO_BROKER: readonly Requirement[] = cluster('cluster_action');

/**
 * Drops from an answer what the principal may not describe: topics of METADATA and LIST_TOPICS,
 * groups of LIST_GROUPS. Other answers are returned as they are.
 */
export function filterResponse<K extends CommandName>(
  name: K,
  response: ResponseOf<K>,
  mayDescribe: (type: 'topic' | 'group', name: string) => boolean,
): ResponseOf<K> {
  switch (name) {
    case 'metadata': {
      const r = response as ResponseOf<'metadata'>;
      return { ...r, topics: r.topics.filter((t) => mayDescribe('topic', t.name)) } as ResponseOf<K>;
    }
    case 'listTopics': {
      const r = response as ResponseOf<'listTopics'>;
      return { ...r, topics: r.topics.filter((t) => mayDescribe('topic', t.name)) } as ResponseOf<K>;
    }
    case 'listGroups': {
      const r = response as ResponseOf<'listGroups'>;
      return { ...r, groups: r.groups.filter((g) => mayDescribe('group', g.groupId)) } as ResponseOf<K>;
    }
    default:
      return response;
  }
}

/** Whether an answer of `name` is filtered (filterResponse). */
export function isFilteredResponse(name: CommandName): boolean {
  return name === 'metadata' || name === 'listTopics' || name === 'listGroups';
}
