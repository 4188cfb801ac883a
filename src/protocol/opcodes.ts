// The opcode table: every request kind on the wire, grouped by range, with whether its frames are
// control frames (small, capped at the control limit before any allocation) or data frames (capped
// at the larger payload limit). A gap is a retired opcode and is never reused.

function op(code: number, control: boolean) {
  return { code, control } as const;
}

export const OPCODE_TABLE = {
  // 0x00xx: connection control.
  HANDSHAKE: op(0x0001, true),
  PING: op(0x0002, true),
  GOAWAY: op(0x0003, true),
  THROTTLE: op(0x0004, true),
  CREDIT: op(0x0005, true),
  // 0x01xx: topics and metadata.
  CREATE_TOPIC: op(0x0101, true),
  DELETE_TOPIC: op(0x0102, true),
  LIST_TOPICS: op(0x0103, true),
  DESCRIBE_TOPIC: op(0x0104, true),
  ALTER_TOPIC: op(0x0105, true),
  METADATA: op(0x0106, true),
  // 0x0110–0x011F: cluster-wide configuration and its history.
  CONFIG_SET: op(0x0110, true),
  CONFIG_HISTORY: op(0x0111, true),
  CONFIG_ROLLBACK: op(0x0112, true),
  // 0x012x: cluster operations, answered by the controller.
  PARTITION_REASSIGN: op(0x0120, true),
  REASSIGNMENT_STATUS: op(0x0121, true),
  BROKER_DRAIN: op(0x0122, true),
  ELECT_LEADERS: op(0x0123, true),
  // 0x02xx: produce and fetch.
  PRODUCE: op(0x0201, false),
  FETCH: op(0x0202, false),
  LIST_OFFSETS: op(0x0203, true),
  INIT_PRODUCER_ID: op(0x0204, true),
  // 0x03xx: streams.
  READ_STREAM: op(0x0301, false),
  STREAM_INFO: op(0x0302, true),
  // 0x04xx: push subscriptions.
  SUBSCRIBE: op(0x0401, true),
  UNSUBSCRIBE: op(0x0402, true),
  PUSH_BATCH: op(0x0403, false),
  // 0x05xx: consumer groups.
  JOIN_GROUP: op(0x0501, true),
  SYNC_GROUP: op(0x0502, true),
  HEARTBEAT: op(0x0503, true),
  LEAVE_GROUP: op(0x0504, true),
  COMMIT_OFFSETS: op(0x0505, true),
  FETCH_OFFSETS: op(0x0506, true),
  LIST_GROUPS: op(0x0507, true),
  DESCRIBE_GROUP: op(0x0508, true),
  FIND_COORDINATOR: op(0x0509, true),
  // 0x06xx: replication, broker to broker. Data opcodes: a replica fetch carries batches, and both
  // may name thousands of partitions.
  REPLICA_FETCH: op(0x0601, false),
  OFFSETS_FOR_LEADER_EPOCH: op(0x0602, false),
  // 0x07xx: authentication (SASL) and users.
  AUTHENTICATE_START: op(0x0701, true),
  AUTHENTICATE_FINISH: op(0x0702, true),
  USER_LIST: op(0x0703, true),
  USER_ALTER: op(0x0704, true),
  // 0x0710–0x0714: tenants and their quotas (super-users).
  TENANT_LIST: op(0x0710, true),
  TENANT_ALTER: op(0x0711, true),
  // 0x0705–0x0709: access control lists (authorization).
  ACL_LIST: op(0x0705, true),
  ACL_ALTER: op(0x0706, true),
  // 0x0610–0x0614: anti-entropy between replicas, broker to broker (digests of many segments and
  // segment bytes: data frames), and its admin trigger.
  SEGMENT_ROOTS: op(0x0610, false),
  SEGMENT_CHUNK_DIGESTS: op(0x0611, false),
  SEGMENT_RANGE: op(0x0612, false),
  // An admin's check now of a topic's follower replicas (its answer lists every partition checked).
  PARTITION_VERIFY: op(0x0613, false),
  // 0x0603–0x0607: broker liveness (heartbeats to the controller).
  BROKER_HEARTBEAT: op(0x0603, true),
} as const;

export type OpcodeName = keyof typeof OPCODE_TABLE;

export const Opcode = Object.fromEntries(Object.entries(OPCODE_TABLE).map(([name, o]) => [name, o.code])) as {
  readonly [K in OpcodeName]: (typeof OPCODE_TABLE)[K]['code'];
};

const byCode = new Map<number, { name: OpcodeName; control: boolean }>(
  Object.entries(OPCODE_TABLE).map(([name, o]) => [o.code, { name: name as OpcodeName, control: o.control }]),
);

/** 1 for each data opcode (u16 indexed): a per-frame check without a Map lookup. */
const DATA_OPCODES = new Uint8Array(0x10000);
for (const [code, info] of byCode) if (!info.control) DATA_OPCODES[code] = 1;

/** True for a known data opcode (payload capped at the data limit); unknown ones are control-capped. */
export function isDataOpcode(code: number): boolean {
  return DATA_OPCODES[code] === 1;
}

export function opcodeInfo(code: number): { name: OpcodeName; control: boolean } | undefined {
  return byCode.get(code);
}

export function opcodeName(code: number): string {
  return byCode.get(code)?.name ?? `0x${code.toString(16).padStart(4, '0')}`;
}
