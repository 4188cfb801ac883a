// Every setting of the broker process: its key (`section.name`, as written in the TOML file), its
// type and allowed range, its default and what it does. docs/configuration.md is generated from
// this table (scripts/config-doc.ts) and a test keeps the two equal.

import { TOKEN_ALGORITHMS } from '../../security/token-settings.js';

export type SettingType =
  | { kind: 'int'; min: number; max: number }
  | { kind: 'size'; min: number; max: number; allowUnlimited?: boolean }
  | { kind: 'duration'; min: number; max: number; allowForever?: boolean }
  | { kind: 'string'; maxLength: number }
  /** An http(s) URL, or the empty string for "none". */
  | { kind: 'url' }
  | { kind: 'enum'; choices: readonly string[] }
  /**
   * A TOML array of strings (or a comma-separated string in the environment), kept as the
   * comma-separated string of its items: each one of `choices`, or matching `pattern`.
   */
  | { kind: 'list'; choices?: readonly string[]; pattern?: RegExp; itemDoc: string };

export interface Setting {
  key: string;
  type: SettingType;
  default: number | string;
  doc: string;
  /** Takes effect on SIGHUP or a change of the configuration file, without a restart. */
  reloadable?: boolean;
}

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const SECOND = 1000;
const DAY = 24 * 3600 * SECOND;

export const SETTINGS = [
  {
    key: 'server.host',
    type: { kind: 'string', maxLength: 255 },
    default: '127.0.0.1',
    doc: 'address the broker listens on',
  },
  {
    key: 'server.port',
    type: { kind: 'int', min: 0, max: 65535 },
    default: 7400,
    doc: 'TCP port for clients (0 picks a free one)',
  },
  {
    key: 'server.max_connections',
    type: { kind: 'int', min: 1, max: 1_000_000 },
    default: 20_000,
    doc: 'connections in total',
    reloadable: true,
  },
  {
    key: 'server.max_connections_per_address',
    type: { kind: 'int', min: 1, max: 1_000_000 },
    default: 1024,
    doc: 'connections from one client IP address; more are refused with TOO_MANY_CONNECTIONS',
    reloadable: true,
  },
  {
    key: 'server.handshake_timeout',
    type: { kind: 'duration', min: 100, max: 600 * SECOND },
    default: 10 * SECOND,
    doc: 'a connection without a handshake by then is closed',
    reloadable: true,
  },
  {
    key: 'server.idle_timeout',
    type: { kind: 'duration', min: SECOND, max: DAY },
    default: 300 * SECOND,
    doc: 'a connection that sends nothing for this long is closed',
    reloadable: true,
  },
  {
    key: 'server.frame_timeout',
    type: { kind: 'duration', min: 100, max: 600 * SECOND },
    default: 30 * SECOND,
    doc: 'a frame whose first bytes arrived must arrive whole within this, else FRAME_TIMEOUT and the connection closes (30 s: an 8 MiB frame needs 2.3 Mbit/s)',
  },
  {
    key: 'server.write_stall_timeout',
    type: { kind: 'duration', min: SECOND, max: DAY },
    default: 60 * SECOND,
    doc: 'a client that takes none of the bytes waiting towards it for this long is cut (CLIENT_NOT_READING); while the global budget is exhausted, after 1 s',
  },
  {
    key: 'server.max_in_flight_requests',
    type: { kind: 'int', min: 1, max: 65_536 },
    default: 256,
    doc: 'requests one connection may have executing at once; more are answered TOO_MANY_REQUESTS_IN_FLIGHT',
  },
  {
    key: 'server.max_fetch_bytes',
    type: { kind: 'size', min: 64 * KiB, max: 256 * MiB },
    default: 8 * MiB,
    doc: "a fetch's maxBytes is clamped to this, and that much is reserved from the budgets before the fetch runs",
  },
  {
    key: 'server.max_subscription_credit',
    type: { kind: 'size', min: MiB, max: GiB },
    default: 16 * MiB,
    doc: 'credit one subscription may hold at once, whatever the client grants (a batch is pushed whole: one larger than this waits until none of the credit is outstanding, then goes alone)',
  },
  {
    key: 'server.max_payload_bytes',
    type: { kind: 'size', min: 64 * KiB, max: GiB },
    default: 8 * MiB,
    doc: 'largest data frame (produce, fetch); checked before allocating',
  },
  {
    key: 'server.max_control_payload_bytes',
    type: { kind: 'size', min: 4 * KiB, max: 16 * MiB },
    default: 64 * KiB,
    doc: 'largest control frame',
  },
  {
    key: 'server.connection_budget',
    type: { kind: 'size', min: 64 * KiB, max: 16 * GiB },
    default: 32 * MiB,
    doc: 'bytes one connection may hold before reading pauses (THROTTLE)',
    reloadable: true,
  },
  {
    key: 'server.global_budget',
    type: { kind: 'size', min: MiB, max: 256 * GiB },
    default: 512 * MiB,
    doc: 'bytes all connections together may hold before reading pauses',
    reloadable: true,
  },
  {
    key: 'server.max_outbound',
    type: { kind: 'size', min: 64 * KiB, max: 16 * GiB },
    default: 64 * MiB,
    doc: 'bytes queued towards a client that does not read before it is cut',
    reloadable: true,
  },
  {
    key: 'server.tls_cert_file',
    type: { kind: 'string', maxLength: 4096 },
    default: '',
    doc: 'older name of tls.cert_file, still accepted (a file sets TLS in [tls] or with these keys, not both)',
  },
  {
    key: 'server.tls_key_file',
    type: { kind: 'string', maxLength: 4096 },
    default: '',
    doc: 'older name of tls.key_file, still accepted',
  },
  {
    key: 'server.tls_ca_file',
    type: { kind: 'string', maxLength: 4096 },
    default: '',
    doc: 'older name of tls.ca_file, still accepted',
  },
  {
    key: 'server.tls_client_auth',
    type: { kind: 'enum', choices: ['none', 'request', 'require'] },
    default: 'none',
    doc: 'older name of tls.client_auth, still accepted',
  },
  {
    key: 'server.shutdown_deadline',
    type: { kind: 'duration', min: 0, max: 600 * SECOND },
    default: 5 * SECOND,
    doc: 'how long in-flight requests may take at shutdown',
  },
  {
    key: 'tls.cert_file',
    type: { kind: 'string', maxLength: 4096 },
    default: '',
    doc: 'PEM certificate chain of the broker: clients, other brokers and the admin endpoint must use TLS (empty: plain TCP); needs tls.key_file. Re-read on SIGHUP and when the file changes',
  },
  {
    key: 'tls.key_file',
    type: { kind: 'string', maxLength: 4096 },
    default: '',
    doc: 'PEM private key of tls.cert_file (re-read with it)',
  },
  {
    key: 'tls.ca_file',
    type: { kind: 'string', maxLength: 4096 },
    default: '',
    doc: 'PEM CA certificates that client certificates (tls.client_auth) and the certificates of the other brokers of the cluster are checked against (empty: the system CAs for other brokers)',
  },
  {
    key: 'tls.client_auth',
    type: { kind: 'enum', choices: ['none', 'request', 'require'] },
    default: 'none',
    doc: 'client certificates: none, request (asked, not required) or require (clients without one signed by tls.ca_file are refused; brokers of a cluster present their own certificate to each other)',
  },
  {
    key: 'tls.admin',
    type: { kind: 'enum', choices: ['true', 'false'] },
    default: 'true',
    doc: 'with tls.cert_file, the admin HTTP endpoint serves HTTPS with the same certificate (false: plain HTTP)',
  },
  {
    key: 'log.level',
    type: { kind: 'enum', choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] },
    default: 'info',
    doc: 'least severe log level written (to standard error)',
    reloadable: true,
  },
  {
    key: 'log.format',
    type: { kind: 'enum', choices: ['auto', 'json', 'pretty'] },
    default: 'auto',
    doc: 'json lines, one readable line per event, or auto (pretty on a terminal, json otherwise)',
  },
  {
    key: 'admin.enabled',
    type: { kind: 'enum', choices: ['true', 'false'] },
    default: 'true',
    doc: 'serve /metrics, /healthz, /readyz and the JSON admin API over HTTP',
  },
  {
    key: 'admin.metrics',
    type: { kind: 'enum', choices: ['true', 'false'] },
    default: 'true',
    doc: 'record request counters and latency histograms (off: /metrics keeps only state gauges)',
    reloadable: true,
  },
  {
    key: 'admin.host',
    type: { kind: 'string', maxLength: 255 },
    default: '127.0.0.1',
    doc: 'address of the admin HTTP endpoint',
  },
  {
    key: 'admin.port',
    type: { kind: 'int', min: 0, max: 65535 },
    default: 7401,
    doc: 'port of the admin HTTP endpoint (0 picks a free one)',
  },
  {
    key: 'tracing.otlp_endpoint',
    type: { kind: 'url' },
    default: '',
    doc: 'OTLP/HTTP receiver for OpenTelemetry spans, e.g. http://127.0.0.1:4318 (empty: tracing off)',
  },
  {
    key: 'tracing.service_name',
    type: { kind: 'string', maxLength: 255 },
    default: 'memorystreamer',
    doc: 'service.name of the exported spans',
  },
  {
    key: 'cluster.etcd',
    type: { kind: 'string', maxLength: 4096 },
    default: '',
    doc: 'join the cluster whose control plane is this etcd: etcd://host:port[,host:port…][/name], or etcds://…[?ca=FILE&cert=FILE&key=FILE] over TLS (docs/security.md; empty: a single broker without etcd)',
  },
  {
    key: 'cluster.broker_id',
    type: { kind: 'int', min: -1, max: 2_147_483_647 },
    default: -1,
    doc: "this broker's id in the cluster (needed with cluster.etcd; the data directory keeps it and never joins as another id)",
  },
  {
    key: 'cluster.advertise',
    type: { kind: 'string', maxLength: 300 },
    default: '',
    doc: 'host:port other brokers and clients reach this broker at (needed with cluster.etcd)',
  },
  {
    key: 'cluster.lease_ttl',
    type: { kind: 'duration', min: SECOND, max: 60 * SECOND },
    default: SECOND,
    doc: 'a broker that stops heartbeating to etcd for this long leaves the cluster (etcd may raise it to its minimum, about 1.5 election timeouts); a dead controller is replaced after it',
  },
  {
    key: 'cluster.fencing_time',
    type: { kind: 'duration', min: 50, max: 60 * SECOND },
    default: 300,
    doc: 'the controller fences a broker whose heartbeats it has not had for this long (its partitions get new leaders from their in-sync replicas), and a broker whose heartbeats the controller has not answered for this long stops acting as a leader',
  },
  {
    key: 'cluster.heartbeat_interval',
    type: { kind: 'duration', min: 5, max: 10 * SECOND },
    default: 50,
    doc: 'how often a broker heartbeats to the controller (well below cluster.fencing_time)',
  },
  {
    key: 'cluster.replica_lag_time',
    type: { kind: 'duration', min: 100, max: 600 * SECOND },
    default: 10 * SECOND,
    doc: 'a follower that has not caught up with its leader for this long leaves the in-sync replicas',
  },
  {
    key: 'auth.mechanisms',
    type: {
      kind: 'list',
      choices: ['SCRAM-SHA-256', 'SCRAM-SHA-512', 'mtls', 'token'],
      itemDoc: 'SCRAM-SHA-256, SCRAM-SHA-512, mtls, token',
    },
    default: '',
    doc: 'authentication clients must pass before any other request, e.g. ["SCRAM-SHA-256", "SCRAM-SHA-512"] (empty: off, every client is served); "mtls": a TLS client certificate verified against server.tls_ca_file authenticates as User:<its common name>; SCRAM users live in <data_dir>/users.json (memorystreamer user add), in a cluster in etcd; the broker does not start with SCRAM on and no user, nor with mtls and no client certificates; in a cluster the brokers authenticate to each other with their certificates (mtls, cluster.broker_principals; see docs/security.md); "token": a signed JWT (bearer token) verified with the auth.token_* settings authenticates as User:<its principal claim>',
  },
  {
    key: 'auth.scram_iterations',
    type: { kind: 'int', min: 4096, max: 10_000_000 },
    default: 4096,
    doc: 'PBKDF2 iterations of new SCRAM credentials; credentials set over the wire with fewer are refused',
  },
  {
    key: 'auth.failure_delay',
    type: { kind: 'duration', min: 0, max: 10 * SECOND },
    default: 200,
    doc: 'a failed authentication is answered after this delay, doubled for each failure from the same address in the last minute (at most 5 s), then the connection closes',
  },
  {
    key: 'auth.max_failures_per_minute',
    type: { kind: 'int', min: 1, max: 1_000_000 },
    default: 20,
    doc: 'failed authentications one address may have within a minute; further attempts are refused at once (TOO_MANY_AUTHENTICATION_FAILURES)',
  },
  {
    key: 'auth.token_public_key_file',
    type: { kind: 'string', maxLength: 4096 },
    default: '',
    doc: 'bearer tokens: the public key (PEM: Ed25519, RSA or EC) their signatures are checked with; read again when the file changes (one of this and auth.token_jwks_file)',
  },
  {
    key: 'auth.token_jwks_file',
    type: { kind: 'string', maxLength: 4096 },
    default: '',
    doc: "bearer tokens: a local JSON Web Key Set file (public keys, chosen by the token's kid); read again when the file changes, so keys rotate without a restart",
  },
  {
    key: 'auth.token_issuer',
    type: { kind: 'string', maxLength: 1024 },
    default: '',
    doc: 'bearer tokens: the iss claim every token must carry (required with "token")',
  },
  {
    key: 'auth.token_audience',
    type: { kind: 'string', maxLength: 1024 },
    default: '',
    doc: 'bearer tokens: the aud claim every token must carry (required with "token")',
  },
  {
    key: 'auth.token_principal_claim',
    type: { kind: 'string', maxLength: 256 },
    default: 'sub',
    doc: 'bearer tokens: the claim whose value is the user name (the principal is User:<value>)',
  },
  {
    key: 'auth.token_algorithms',
    type: { kind: 'list', choices: TOKEN_ALGORITHMS, itemDoc: TOKEN_ALGORITHMS.join(', ') },
    default: '',
    doc: 'bearer tokens: signature algorithms accepted (empty: all of these asymmetric ones; HMAC and none never are)',
  },
  {
    key: 'auth.token_clock_tolerance',
    type: { kind: 'duration', min: 0, max: 10 * 60 * SECOND },
    default: 0,
    doc: "bearer tokens: leeway allowed for exp and nbf against the broker's clock",
  },
  {
    key: 'authz.enabled',
    type: { kind: 'enum', choices: ['true', 'false'] },
    default: 'false',
    doc: 'check every request against the ACLs (<data_dir>/acls.json on a single broker, etcd with cluster.etcd; memorystreamer acl add); what no ACL allows is refused (AUTHORIZATION_FAILED), super-users may do everything, a client that did not authenticate is User:ANONYMOUS; the broker does not start with neither a super-user nor an ACL (see docs/security.md)',
  },
  {
    key: 'authz.super_users',
    type: { kind: 'list', pattern: /^User:[A-Za-z0-9._@-]+$/, itemDoc: 'User:<name>' },
    default: '',
    doc: 'principals allowed every operation, e.g. ["User:admin"]; managing users over the wire (memorystreamer user … --broker) is for them only',
  },
  {
    key: 'audit.enabled',
    type: { kind: 'enum', choices: ['auto', 'true', 'false'] },
    default: 'auto',
    doc: 'keep the hash-chained audit log of authentications, denials and administrative changes (auto: when auth.mechanisms is set); check it with memorystreamer audit verify (see docs/security.md)',
  },
  {
    key: 'audit.dir',
    type: { kind: 'string', maxLength: 4096 },
    default: '',
    doc: 'directory of the audit log (audit.log, and audit.log.<n> once rotated); empty: <storage.data_dir>/audit',
  },
  {
    key: 'audit.max_file_size',
    type: { kind: 'size', min: 64 * KiB, max: 4 * GiB },
    default: 64 * MiB,
    doc: 'the audit log is rotated to audit.log.<n> at this size; the hash chain runs on across files',
  },
  {
    key: 'audit.fsync_interval',
    type: { kind: 'duration', min: 0, max: 10 * SECOND },
    default: 200,
    doc: 'audit records are written at once and fsynced together at most this long after (0: fsync each record before going on)',
  },
  {
    key: 'audit.topic',
    type: { kind: 'string', maxLength: 249 },
    default: '',
    doc: 'also append every audit record to this internal topic (a name starting with __, e.g. "__audit"; one partition, created by the broker; key the action, value the record line with its hash), readable by super-users and ACLs, written by the broker only; needs authz.enabled; a broker alone only; empty: off (see docs/security.md)',
  },
  {
    key: 'cluster.anti_entropy_interval',
    type: { kind: 'duration', min: 0, max: 7 * DAY },
    default: 5 * 60 * SECOND,
    doc: 'followers compare their sealed segments with their leaders by digests this often and repair bytes that differ (0: never)',
  },
  {
    key: 'cluster.broker_principals',
    type: { kind: 'list', pattern: /^User:[A-Za-z0-9._@-]+$/, itemDoc: 'User:<name>' },
    default: '',
    doc: 'with auth.mechanisms on in a cluster: the principals of the brokers, e.g. ["User:broker"] (the common names of their TLS certificates, mtls); only they are served replica fetches, heartbeats and anti-entropy (others: AUTHORIZATION_FAILED)',
  },
  {
    key: 'storage.data_dir',
    type: { kind: 'string', maxLength: 4096 },
    default: './data',
    doc: 'directory for topics and logs',
  },
  {
    key: 'storage.max_decompressed_bytes',
    type: { kind: 'size', min: MiB, max: 4 * GiB },
    default: 64 * MiB,
    doc: 'largest size a compressed batch may inflate to',
  },
  {
    key: 'storage.max_open_files',
    type: { kind: 'int', min: 0, max: 10_000_000 },
    default: 0,
    doc: 'files storage keeps open at once (segments are opened on use, idle ones closed); 0: a quarter of the open-files limit, at least 64',
  },
  {
    key: 'storage.inline_write_max_bytes',
    type: { kind: 'size', min: 0, max: 64 * MiB },
    default: 256 * KiB,
    doc: 'an append write of at most this size is made in line on the event loop, into the page cache, instead of on the thread pool (0: never)',
  },
  {
    key: 'storage.inline_write_slow',
    type: { kind: 'duration', min: 1, max: 10 * SECOND },
    default: 2,
    doc: 'two in-line writes in a row that take longer than this (writeback throttling, a slow disk) send their partition to thread-pool writes for storage.inline_write_cooldown',
  },
  {
    key: 'storage.inline_write_cooldown',
    type: { kind: 'duration', min: 1, max: 3600 * SECOND },
    default: 5 * SECOND,
    doc: 'how long a partition writes on the thread pool after a slow in-line write before it tries in line again',
  },
  {
    key: 'topics.partitions',
    type: { kind: 'int', min: 1, max: 10_000 },
    default: 1,
    doc: 'partitions of a topic created without a count',
    reloadable: true,
  },
  {
    key: 'topics.max_partitions',
    type: { kind: 'int', min: 1, max: 1_000_000 },
    default: 10_000,
    doc: 'partitions of all topics together this broker takes; a create or grow past it is refused (PARTITION_LIMIT_EXCEEDED); each partition costs memory',
  },
  {
    key: 'topics.durability',
    type: { kind: 'enum', choices: ['always', 'interval', 'never'] },
    default: 'interval',
    doc: 'default durability of new topics (always = fsync before the acknowledgement)',
    reloadable: true,
  },
  {
    key: 'topics.flush_interval',
    type: { kind: 'duration', min: 1, max: 3600 * SECOND },
    default: 100,
    doc: 'fdatasync period for durability interval',
    reloadable: true,
  },
  {
    key: 'topics.retention',
    type: { kind: 'duration', min: SECOND, max: 100_000 * DAY, allowForever: true },
    default: -1,
    doc: 'default age after which segments are deleted (forever = -1)',
    reloadable: true,
  },
  {
    key: 'topics.retention_bytes',
    type: { kind: 'size', min: MiB, max: Number.MAX_SAFE_INTEGER, allowUnlimited: true },
    default: -1,
    doc: 'default size per partition above which old segments are deleted (unlimited = -1)',
    reloadable: true,
  },
  {
    key: 'topics.max_message_bytes',
    type: { kind: 'size', min: 64, max: 256 * MiB },
    default: MiB,
    doc: 'default largest batch a producer may send',
    reloadable: true,
  },
  {
    key: 'topics.segment_bytes',
    type: { kind: 'size', min: 4 * KiB, max: 2 * GiB - 1 },
    default: 256 * MiB,
    doc: 'default segment size at which a log rolls',
    reloadable: true,
  },
  {
    key: 'topics.segment_age',
    type: { kind: 'duration', min: SECOND, max: 100_000 * DAY },
    default: 7 * DAY,
    doc: 'default age at which a segment rolls',
    reloadable: true,
  },
  {
    key: 'compaction.min_dirty_percent',
    type: { kind: 'int', min: 1, max: 100 },
    default: 50,
    doc: 'compact a partition of a cleanup=compact topic once this percentage of its sealed bytes is not yet cleaned',
  },
  {
    key: 'compaction.delete_retention',
    type: { kind: 'duration', min: 0, max: 100_000 * DAY },
    default: DAY,
    doc: 'age (record timestamp) after which compaction drops a tombstone (a record with a null value)',
  },
  {
    key: 'compaction.min_lag',
    type: { kind: 'duration', min: 0, max: 100_000 * DAY },
    default: 0,
    doc: 'sealed segments holding a record younger than this are not compacted yet',
  },
  {
    key: 'compaction.max_map_entries',
    type: { kind: 'int', min: 1000, max: 100_000_000 },
    default: 1_000_000,
    doc: 'keys in the offset map of one compaction pass (about 100 bytes each); more keys take more passes',
  },
] as const satisfies readonly Setting[];

export type SettingKey = (typeof SETTINGS)[number]['key'];
