// The single table of error codes spoken on the wire and thrown by every layer.
// Codes are grouped by range (1xx framing, 2xx connection and limits, 3xx topics and data,
// 4xx producers, 5xx groups, 6xx storage, 7xx cluster, 8xx security, 9xx internal).
// A gap is a retired code: never reuse a number. docs/errors.md lists every entry and a test keeps
// the two in sync. Clients map a code they do not know to UNKNOWN_SERVER_ERROR instead of failing.

import { type ErrorDescriptor, MemoryStreamerError } from '../common/errors.js';

function entry(code: number, retriable: boolean, message: string) {
  return { code, retriable, message } as const;
}

export const ERROR_TABLE = {
  NONE: entry(0, false, 'no error'),

  // 1xx: framing and protocol. The byte stream may no longer be trusted for most of these.
  BAD_MAGIC: entry(100, false, 'frame does not start with the magic bytes MSTR'),
  UNSUPPORTED_VERSION: entry(101, false, 'protocol version is not supported'),
  BAD_HEADER_CRC: entry(102, false, 'frame header CRC-32C does not match'),
  BAD_PAYLOAD_CRC: entry(103, false, 'frame payload CRC-32C does not match'),
  UNKNOWN_OPCODE: entry(104, false, 'opcode is not known'),
  FRAME_TOO_LARGE: entry(105, false, 'frame payload exceeds the maximum frame size'),
  TRUNCATED_FRAME: entry(106, false, 'frame ended before its declared length'),
  MALFORMED_PAYLOAD: entry(107, false, 'payload does not follow the layout of its opcode'),
  HANDSHAKE_REQUIRED: entry(108, false, 'the first frame on a connection must be a handshake'),
  HANDSHAKE_TIMEOUT: entry(109, false, 'no handshake arrived in time'),
  UNSUPPORTED_FEATURE: entry(110, false, 'requested feature is not supported'),
  BAD_RECORD_BATCH: entry(111, false, 'record batch is malformed'),
  BAD_BATCH_CRC: entry(112, false, 'record batch CRC-32C does not match'),
  UNSUPPORTED_COMPRESSION: entry(113, false, 'compression codec is not supported'),
  DECOMPRESSED_TOO_LARGE: entry(114, false, 'record batch inflates past the decompression limit'),
  BAD_FLAGS: entry(115, false, 'frame flags are not valid for this frame'),
  DUPLICATE_CORRELATION_ID: entry(116, false, 'correlation id is already in flight on this connection'),

  // 2xx: connection, flow control and resource limits.
  REQUEST_TIMEOUT: entry(200, true, 'request timed out'),
  THROTTLED: entry(201, true, 'broker is throttling this client: memory budget exceeded'),
  TOO_MANY_CONNECTIONS: entry(202, true, 'connection limit reached'),
  IDLE_TIMEOUT: entry(203, true, 'connection was idle for too long'),
  SHUTTING_DOWN: entry(204, true, 'broker is shutting down'),
  CONNECTION_CLOSED: entry(205, true, 'connection closed before the request completed'),
  UNKNOWN_CHANNEL: entry(206, false, 'channel id is not open on this connection'),
  INVALID_REQUEST: entry(207, false, 'request is invalid'),
  TOO_MANY_REQUESTS_IN_FLIGHT: entry(208, true, 'too many requests in flight on this connection'),
  FRAME_TIMEOUT: entry(209, true, 'a frame started did not arrive whole in time; connection closed'),
  CLIENT_NOT_READING: entry(
    210,
    true,
    'client did not read what the broker sent (outbound limit or stall); connection closed',
  ),

  // 3xx: topics, partitions, streams and offsets.
  UNKNOWN_TOPIC: entry(300, false, 'topic does not exist'),
  TOPIC_ALREADY_EXISTS: entry(301, false, 'topic already exists'),
  UNKNOWN_PARTITION: entry(302, false, 'partition does not exist'),
  INVALID_TOPIC_NAME: entry(303, false, 'topic name is not valid'),
  INVALID_CONFIG: entry(304, false, 'configuration value is not valid'),
  MESSAGE_TOO_LARGE: entry(305, false, 'message or batch exceeds the maximum size'),
  OFFSET_OUT_OF_RANGE: entry(306, false, 'offset is outside the log'),
  STREAM_VERSION_CONFLICT: entry(307, false, 'stream is not at the expected version'),
  INVALID_STREAM_KEY: entry(308, false, 'stream key is not valid'),
  INVALID_PARTITION_COUNT: entry(309, false, 'partition count is not valid'),
  TOPIC_OFFLINE: entry(310, false, 'topic could not be opened at start and is offline until a restart'),
  FILE_LIMIT_EXCEEDED: entry(311, false, 'the process ran out of file descriptors; the change was undone'),
  PARTITION_GROWTH_MOVES_KEYS: entry(
    312,
    false,
    'growing the partitions of a topic with keyed messages moves keys and resets their stream versions',
  ),
  PARTITION_LIMIT_EXCEEDED: entry(
    313,
    false,
    'the broker would hold more partitions than topics.max_partitions',
  ),

  // 4xx: producers and idempotence.
  OUT_OF_ORDER_SEQUENCE: entry(400, false, 'producer sequence number is out of order'),
  DUPLICATE_SEQUENCE: entry(401, false, 'batch was already written with this producer sequence'),
  INVALID_PRODUCER_EPOCH: entry(402, false, 'producer epoch is fenced by a newer one'),
  UNKNOWN_PRODUCER_ID: entry(403, false, 'producer id is not known'),

  // 5xx: consumer groups.
  UNKNOWN_GROUP: entry(500, false, 'consumer group does not exist'),
  UNKNOWN_MEMBER: entry(501, false, 'member is not part of the group'),
  REBALANCE_IN_PROGRESS: entry(502, true, 'group is rebalancing'),
  ILLEGAL_GENERATION: entry(503, false, 'group generation is stale'),
  INVALID_GROUP_ID: entry(504, false, 'group id is not valid'),

  // 6xx: storage.
  STORAGE_FULL: entry(600, true, 'no space left on the storage device'),
  STORAGE_FAILED: entry(601, false, 'partition storage failed and is read-only until restart'),
  CORRUPT_DATA: entry(602, false, 'stored data failed its checksum'),
  STORAGE_IO: entry(603, true, 'storage I/O error'),
  PARTITION_CLOSED: entry(604, true, 'partition is closed'),
  DATA_DIR_LOCKED: entry(605, false, 'another broker holds the data directory'),
  DATA_DIR_UNUSABLE: entry(606, false, 'the data directory cannot be used'),
  STORAGE_FILE_MISSING: entry(610, false, 'a file of the partition log is missing from the data directory'),
  STORAGE_NO_FILE_DESCRIPTORS: entry(611, true, 'no file descriptor is left to open a storage file'),
  REPLICA_OFFSET_MISMATCH: entry(615, false, 'a replicated batch does not start at the log end offset'),
  TRUNCATION_INSIDE_BATCH: entry(616, false, 'the truncation offset is inside a record batch'),
  INVALID_HIGH_WATERMARK: entry(617, false, 'the high watermark would go backwards or past the log end'),
  LOG_TRUNCATING: entry(618, true, 'the partition log is being truncated'),

  // 7xx: cluster.
  NOT_LEADER: entry(700, true, 'this broker is not the leader of the partition'),
  LEADER_NOT_AVAILABLE: entry(701, true, 'partition has no leader right now'),
  NOT_ENOUGH_REPLICAS: entry(702, true, 'fewer in-sync replicas than required'),
  FENCED_LEADER_EPOCH: entry(703, false, 'leader epoch is stale'),
  BROKER_NOT_AVAILABLE: entry(704, true, 'broker is not available'),
  UNKNOWN_LEADER_EPOCH: entry(705, true, 'leader epoch is newer than this broker knows yet'),
  NOT_ENOUGH_REPLICAS_AFTER_APPEND: entry(
    706,
    true,
    'written on the leader, but the in-sync replicas fell below the minimum before it was replicated',
  ),
  NOT_A_REPLICA: entry(707, false, 'broker is not a replica of the partition'),
  CORRUPT_EPOCH_CHECKPOINT: entry(708, false, 'leader epoch checkpoint is corrupt'),
  LEADER_EPOCH_REGRESSION: entry(709, false, 'leader epoch or its start offset would go backwards'),
  INCONSISTENT_REPLICA_FETCH: entry(710, false, 'replica fetch response does not continue the follower log'),
  NOT_ENOUGH_BROKERS: entry(
    711,
    false,
    'replication factor is larger than the live brokers (a broker without a cluster is one)',
  ),
  NOT_COORDINATOR: entry(712, true, 'this broker is not the coordinator of the group'),
  COORDINATOR_NOT_AVAILABLE: entry(713, true, 'the group has no coordinator right now'),
  CONTROL_PLANE_UNAVAILABLE: entry(720, true, 'the cluster control plane (etcd) cannot be reached'),
  NOT_CONTROLLER: entry(721, true, 'this broker is not the cluster controller (or no longer is)'),
  CLUSTER_ID_MISMATCH: entry(722, false, 'the data directory belongs to another cluster or broker id'),
  BROKER_ID_IN_USE: entry(723, false, 'another live broker is registered with this broker id'),
  INVALID_CLUSTER_METADATA: entry(724, false, 'cluster metadata in the control plane is not valid'),
  CLUSTER_CONFIG_NEEDS_CLUSTER: entry(
    730,
    false,
    'cluster-wide configuration needs a broker in a cluster (serve --cluster); a single broker reloads its file',
  ),
  CONFIG_NOT_RELOADABLE: entry(
    731,
    false,
    'the setting only changes with a restart, so it cannot be set cluster-wide (set it in the file)',
  ),
  UNKNOWN_CONFIG_VERSION: entry(732, false, 'no configuration version with this number'),
  UNKNOWN_BROKER: entry(735, false, 'no live broker of the cluster has this id'),
  DUPLICATE_REPLICA: entry(736, false, 'a replica list names a broker twice'),
  REPLICATION_FACTOR_MISMATCH: entry(
    737,
    false,
    "the new replicas are not as many as the topic's replication factor",
  ),
  NEEDS_CLUSTER: entry(738, false, 'this operation needs a cluster (brokers started with serve --cluster)'),
  REASSIGNMENT_IN_PROGRESS: entry(739, false, 'the partition is being reassigned already'),
  // 750–754: anti-entropy between replicas (segment digests and repair).
  SEGMENT_NOT_FOUND: entry(750, false, 'no sealed segment below the high watermark starts at this offset'),
  SEGMENT_RANGE_INVALID: entry(
    751,
    false,
    'segment byte range is outside the segment, out of order or too large',
  ),
  SEGMENT_REPAIR_FAILED: entry(
    752,
    true,
    'the repaired copy of a segment did not verify; the segment is unchanged',
  ),
  SEGMENT_DIGEST_MISMATCH: entry(753, true, "segment bytes from the leader do not match the leader's digest"),
  MEMORY_TOPIC_UNBOUNDED: entry(
    770,
    false,
    'a memory topic holds its log in memory: it needs retentionBytes (≥ 1, at least segmentBytes)',
  ),
  MEMORY_TOPIC_NOT_REPLICATED: entry(
    771,
    false,
    'memory topics live on one broker alone: a cluster does not create them (use storage disk)',
  ),
  MEMORY_TOPIC_NO_DURABILITY: entry(
    772,
    false,
    'durability does not apply to a memory topic (nothing is written to disk; it is never)',
  ),
  BROKER_SESSION_UNKNOWN: entry(
    740,
    true,
    'the controller does not know the broker registration a heartbeat names (a stale process, or one not seen yet)',
  ),
  CORES_OPTION_CONFLICT: entry(
    760,
    false,
    'serve --cores starts its own cluster members and gives each its broker id, address and data directory',
  ),
  ETCD_NOT_INSTALLED: entry(
    761,
    false,
    'serve --cores without --cluster runs a local etcd, and etcd is not installed (Debian and Ubuntu: apt-get install etcd-server; or pass --cluster etcd://host:port)',
  ),
  CORES_MEMBER_FAILED: entry(762, false, 'a broker process of serve --cores could not start'),

  // 8xx: security.
  AUTHENTICATION_FAILED: entry(800, false, 'authentication failed'),
  AUTHORIZATION_FAILED: entry(801, false, 'not authorized'),
  // Refused by a consumer that checks signatures or decrypts (client-side message security).
  MESSAGE_SIGNATURE_INVALID: entry(802, false, 'the message signature does not match its contents'),
  MESSAGE_UNSIGNED: entry(803, false, 'the message is not signed and signatures are required'),
  MESSAGE_DECRYPTION_FAILED: entry(804, false, 'the message value cannot be decrypted'),
  UNKNOWN_MESSAGE_KEY: entry(805, false, 'no key with this id to check or decrypt the message'),
  // Transport security: which side of a TLS connection failed, and why, said before any request.
  TLS_REQUIRED: entry(806, false, 'this listener accepts TLS connections only; connect with TLS'),
  TLS_NOT_OFFERED: entry(807, false, 'the listener does not speak TLS; connect without TLS'),
  TLS_CERTIFICATE_REJECTED: entry(808, false, "the peer's TLS certificate is not trusted"),
  TLS_HANDSHAKE_FAILED: entry(809, false, 'the TLS handshake was refused by the peer'),
  // 81x: authentication (SASL/SCRAM) and users.
  TOO_MANY_AUTHENTICATION_FAILURES: entry(
    810,
    true,
    'too many failed authentications from this address; try again later',
  ),
  UNSUPPORTED_SASL_MECHANISM: entry(811, false, 'the broker does not accept this authentication mechanism'),
  USER_NOT_FOUND: entry(812, false, 'no user with this name'),
  USER_ALREADY_EXISTS: entry(813, false, 'a user with this name exists already'),
  INVALID_CREDENTIAL: entry(814, false, 'the user name, password or credential is not valid'),
  // 83x: bearer tokens.
  TOKEN_EXPIRED: entry(830, true, "the connection's bearer token expired; connect again with a fresh token"),
  // 825-829: the audit log.
  AUDIT_CHAIN_BROKEN: entry(825, false, 'the audit log hash chain is broken'),
  AUDIT_LOG_UNAVAILABLE: entry(826, false, 'the audit log cannot be read or written'),
  // 84x: tenants and quotas.
  TENANT_NOT_FOUND: entry(840, false, 'no tenant with this name'),
  TENANT_ALREADY_EXISTS: entry(841, false, 'a tenant with this name exists already'),
  INVALID_TENANT: entry(842, false, 'the tenant name, member or quota is not valid'),
  TENANT_STORAGE_QUOTA_EXCEEDED: entry(
    843,
    false,
    "the tenant's or principal's topics hold more bytes than its storage quota; produce refused",
  ),
  TENANT_TOPIC_QUOTA_EXCEEDED: entry(
    844,
    false,
    'the topic or partition count quota of the tenant or principal would be exceeded',
  ),
  CONNECTION_QUOTA_EXCEEDED: entry(
    845,
    false,
    'the tenant or principal has as many connections as its quota allows; the connection is closed',
  ),
  // 815–824: access control lists (authorization).
  INVALID_ACL: entry(815, false, 'the access control entry is not valid'),
  ACL_NOT_FOUND: entry(816, false, 'no access control entry matches'),
  AUTHORIZATION_DISABLED: entry(817, false, 'authorization is off on this broker (authz.enabled = false)'),

  // 9xx: internal, and refusals by the client itself.
  // Not retriable: a broker bug answers the same way on every attempt (a retry only multiplies it).
  INTERNAL_ERROR: entry(900, false, 'internal broker error'),
  REQUEST_TOO_LARGE: entry(
    901,
    false,
    "request exceeds the broker's frame size limit; the client did not send it",
  ),
  UNKNOWN_SERVER_ERROR: entry(999, false, 'broker returned an error code this client does not know'),
} as const;

export type ErrorName = keyof typeof ERROR_TABLE;

/** Numeric codes by name: `ErrorCode.UNKNOWN_TOPIC === 300`. */
export const ErrorCode = Object.fromEntries(
  Object.entries(ERROR_TABLE).map(([name, e]) => [name, e.code]),
) as { readonly [K in ErrorName]: (typeof ERROR_TABLE)[K]['code'] };
export type ErrorCodeValue = (typeof ErrorCode)[ErrorName];

const byCode = new Map<number, ErrorDescriptor>(
  Object.entries(ERROR_TABLE).map(([name, e]) => [e.code, { name, ...e }]),
);

/** The descriptor of a code; unknown codes map to UNKNOWN_SERVER_ERROR (never throws). */
export function describeError(code: number): ErrorDescriptor {
  return byCode.get(code) ?? { name: 'UNKNOWN_SERVER_ERROR', ...ERROR_TABLE.UNKNOWN_SERVER_ERROR };
}

export function isKnownErrorCode(code: number): boolean {
  return byCode.has(code);
}

/** Builds the typed error for a code, with an optional detail appended to the table's message. */
export function errorOf(
  name: ErrorName,
  detail?: string,
  options?: { cause?: unknown },
): MemoryStreamerError {
  return new MemoryStreamerError({ name, ...ERROR_TABLE[name] }, detail, options);
}

/** Builds the typed error a client raises for a code received on the wire. */
export function errorFromWire(code: number, detail?: string): MemoryStreamerError {
  const descriptor = describeError(code);
  // The broker sends its full message ("<table message>: <detail>"); keep the detail only once.
  if (detail?.startsWith(descriptor.message))
    detail = detail.slice(descriptor.message.length).replace(/^: /, '') || undefined;
  return new MemoryStreamerError(
    descriptor.name === 'UNKNOWN_SERVER_ERROR' && code !== ERROR_TABLE.UNKNOWN_SERVER_ERROR.code
      ? { ...descriptor, message: `${descriptor.message} (code ${code})` }
      : descriptor,
    detail,
  );
}
