// A broker node: the parts of one broker process and the order they start and stop in. Both ways of
// running a broker use it: `memorystreamer serve` and the embedded `Broker` (src/embedded), which
// adds the in-process transport on top.
//
// Start:  file-descriptor budget (before storage opens: it raises the limit and caps storage's
//         open files) → tracing → storage and the broker core → the node's parts, in order →
//         TCP listener → admin HTTP endpoint → memory trimmer.
// Stop:   memory trimmer → listener (GOAWAY, in-flight requests finish up to the deadline) →
//         admin endpoint → the parts, in reverse order → core and storage → tracing (last, so the
//         spans of the final requests are exported).
// A start that fails stops what had started, in the same order.

import { join } from 'node:path';
import { Counter } from 'prom-client';
import type { MemoryStreamerError } from '../common/errors.js';
import { type BrokerLogger, silentLogger } from '../metrics/logger.js';
import { type BrokerTracing, type OtlpTracingOptions, otlpTracing } from '../metrics/tracing.js';
import { errorOf } from '../protocol/error-codes.js';
import { Opcode } from '../protocol/opcodes.js';
import { describeResource } from '../security/acl.js';
import { aclAlterEvent, configReloadEvent } from '../security/audit-events.js';
import { AuditLog, type AuditLogOptions } from '../security/audit-log.js';
import { type AuditEvent, parseRecord } from '../security/audit-record.js';
import { AuditTopicWriter } from '../security/audit-topic.js';
import { auditRecordsAfter } from '../security/audit-verify.js';
import { BrokerAuthorization, type BrokerAuthorizationOptions } from '../security/authorizer-service.js';
import { BrokerAuthenticator, type BrokerAuthOptions } from '../security/broker-authenticator.js';
import type { TenantBackend } from '../security/tenant-store.js';
import { AdminServer } from './admin/admin-server.js';
import { BrokerCore, type BrokerCoreOptions, OFFSETS_TOPIC } from './broker-core.js';
import type { FdBudget } from './fd-budget.js';
import type { MemoryTrimmer, MemoryTrimSettings } from './memory-trimmer.js';
import { attachTenantQuotas, TenantQuotas } from './quotas/tenant-quotas.js';
import { NetworkServer, type ServerLimits } from './server/network-server.js';
import type { ServerTlsOptions } from './server/tls.js';
import { applyStartupFileBudget } from './startup-file-budget.js';
import { startMemoryTrim } from './startup-memory-trim.js';
import { INTERNAL_TOPIC_PREFIX } from './topics/topic-config.js';

/** How often the audit log is checked for records other processes appended (for the audit topic). */
const AUDIT_FOLLOW_MS = 1000;
/** How long stopping waits for the tracing exporter before giving its spans up. */
const TRACING_SHUTDOWN_MS = 2000;

export interface BrokerNodeOptions extends BrokerCoreOptions {
  /** Also listen on TCP at this port (0 picks a free one). */
  port?: number;
  host?: string;
  limits?: Partial<ServerLimits>;
  /** Serve clients over TLS only (certificate, key, and the CA of client certificates if required). */
  tls?: ServerTlsOptions;
  /**
   * Require SCRAM authentication on the listener (users in <dataDir>/users.json, managed with
   * `memorystreamer user`); the start fails when there is no user. Open when not set.
   */
  auth?: BrokerAuthOptions;
  /**
   * The hash-chained audit log of authentications and administrative changes, in `<dataDir>/audit`
   * unless `dir` (docs/security.md#audit-log). Default: on when `auth` is, else off (`enabled` decides).
   */
  audit?: Omit<AuditLogOptions, 'dir' | 'onError' | 'onAppended'> & {
    dir?: string;
    enabled?: boolean;
    /**
     * Also append every record to this internal topic (a name starting with `__`, one partition,
     * created when missing; docs/security.md#the-audit-topic). A broker alone only; with a
     * listener, only with `authz` (who may read it is an ACL's business).
     */
    topic?: string;
  };
  /**
   * Check every request of the listener against the ACLs of <dataDir>/acls.json, or of the store
   * `authz.openStore` opens (a cluster's, in etcd; managed with `memorystreamer acl`);
   * super-users may do everything. The start fails when there is neither a
   * super-user nor an ACL. A connection that did not authenticate is User:ANONYMOUS.
   */
  authz?: BrokerAuthorizationOptions;
  /** Opens the tenant registry a cluster shares (etcd); default `<dataDir>/tenants.json`. */
  openTenants?: (onResync?: (reason: string) => void) => Promise<TenantBackend>;
  /** Where connection events and unexpected errors go (silent by default). */
  logger?: BrokerLogger;
  /**
   * Serve /metrics, /healthz, /readyz and the read-only JSON API over HTTP here (over HTTPS with
   * the `tls` certificate, unless `tls: false`).
   */
  admin?: { host?: string; port: number; tls?: false };
  /** Record request counters and latency histograms (default true). */
  metrics?: boolean;
  /**
   * Export spans over OTLP/HTTP (`tracing.otlp_endpoint`). To use a tracer of your own instead,
   * pass `tracer` (from BrokerCoreOptions).
   */
  tracing?: OtlpTracingOptions;
  /**
   * Raise the process's soft open-files limit to its hard limit at start (default true; it is
   * process-wide, so an application embedding the broker may turn it off).
   */
  raiseFileLimit?: boolean;
  /**
   * Files storage may hold open at once (segments and stream files are opened on use and idle ones
   * closed under this cap; process-wide). Default: a quarter of the open-files limit.
   */
  maxOpenFiles?: number;
  /**
   * Return freed malloc memory to the OS (malloc_trim, glibc Linux with the native addon; see
   * docs/native-memory.md): checked every `intervalMs` (default 2000), trimmed when memory outside
   * V8 and Buffers grew by more than `thresholdBytes` (default 32 MiB), after a full garbage
   * collection (at most one per `minGcIntervalMs`, default 10 000) when the connections let go of
   * more than that. `false` turns it off.
   */
  memoryTrim?: Partial<MemoryTrimSettings> | false;
}

/**
 * An optional part of a node that runs beside the core (a cluster's control-plane member, say).
 * Parts start after storage has opened and before the listener accepts clients, so a client never
 * reaches a broker whose parts are not running; they stop after the listener has closed and before
 * storage closes.
 */
export interface NodePart {
  /** What the part is, for the log and for errors of a start that failed. */
  readonly name: string;
  /** Before the node stops serving (a cluster member moves its leadership away first). */
  beforeStop?(): Promise<void>;
  stop(): Promise<void>;
}

/** What a part may ask of its node. */
export interface NodePartContext {
  /** The listener's certificate, key and CA as they are now (null: plain TCP); see reloadTls. */
  tls(): ServerTlsOptions | null;
}

/** Starts a part over the opened core. A part that fails to start fails the node's start. */
export interface NodePartStarter {
  (core: BrokerCore, logger: BrokerLogger, node: NodePartContext): Promise<NodePart>;
  /** How the core must be opened for this part (a cluster member keeps group offsets in the cluster). */
  readonly coreOptions?: Partial<BrokerCoreOptions>;
}

/** Gives the tracing exporter a short deadline: an unreachable collector must not make stopping hang. */
async function shutdownTracing(tracing: BrokerTracing): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    tracing.shutdown().catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, TRACING_SHUTDOWN_MS);
      timer.unref();
    }),
  ]);
  clearTimeout(timer);
}

/** Stops parts in reverse start order; every part is stopped even when one of them fails. */
async function stopParts(parts: readonly NodePart[], logger: BrokerLogger): Promise<void> {
  for (const part of [...parts].reverse()) {
    try {
      await part.stop();
    } catch (error) {
      logger.error(
        { part: part.name, reason: (error as Error).message },
        'a broker part did not stop cleanly',
      );
    }
  }
}

/** The audit log the options ask for (on by default when authentication is), or null. */
async function openAudit(
  options: BrokerNodeOptions,
  authenticating: boolean,
  logger: BrokerLogger,
  core: BrokerCore,
  clusterMember: boolean,
): Promise<{ log: AuditLog; topic: AuditTopicWriter | null } | null> {
  const { dir, enabled, topic: topicName, ...settings } = options.audit ?? {};
  if (!(enabled ?? authenticating)) return null;
  const logDir = dir ?? join(options.dataDir, 'audit');
  const onError = (error: MemoryStreamerError, event: AuditEvent) =>
    logger.error({ action: event.action, reason: error.message }, 'audit record not written');
  if (topicName === undefined || topicName === '')
    return { log: AuditLog.open({ ...settings, dir: logDir, onError }), topic: null };
  if (!topicName.startsWith(INTERNAL_TOPIC_PREFIX) || topicName === OFFSETS_TOPIC)
    throw errorOf(
      'INVALID_CONFIG',
      `audit.topic = ${JSON.stringify(topicName)}: the audit topic is internal, its name starts with "__" (e.g. "__audit") and is not ${OFFSETS_TOPIC}`,
    );
  if (clusterMember)
    throw errorOf(
      'INVALID_CONFIG',
      'audit.topic is for a broker alone: in a cluster each broker keeps its audit log on disk (audit verify per broker)',
    );
  if (options.port !== undefined && options.authz === undefined)
    throw errorOf(
      'INVALID_CONFIG',
      'audit.topic needs authz.enabled = true: without authorization every client could read the audit topic',
    );
  const topic = await core.internalTopic(topicName);
  const lost = new Counter({
    name: 'memorystreamer_audit_topic_lost_records_total',
    help: 'audit records that did not reach the audit topic (a full queue or a failed write); the disk log holds them',
    registers: [core.metrics.registry],
  });
  const writer = new AuditTopicWriter({
    append: topic.append,
    onLost: (count, reason) => {
      lost.inc(count);
      logger.warn(
        { topic: topicName, records: count, reason },
        'audit records not written to the audit topic',
      );
    },
  });
  // The topic goes on from its newest record: records the disk log got meanwhile (offline commands
  // while the broker was stopped) are copied first. A new, empty topic starts with the next record.
  const last = await topic.lastValue();
  const lastSeq = last === null ? null : (parseRecord(last.toString('utf8'))?.record.seq ?? null);
  const log = AuditLog.open({
    ...settings,
    dir: logDir,
    onError,
    onAppended: (record, line) => writer.forward(record, line),
  });
  if (lastSeq !== null)
    for (const { record, line } of auditRecordsAfter({ dir: logDir }, lastSeq)) writer.forward(record, line);
  return { log, topic: writer };
}

export class BrokerNode {
  readonly core: BrokerCore;
  readonly server: NetworkServer | null;
  readonly admin: AdminServer | null;
  /** The optional parts, in the order they started. */
  readonly parts: readonly NodePart[];
  private stopped = false;
  private readonly tracing: BrokerTracing | null;
  private readonly trimmer: MemoryTrimmer | null;
  private readonly logger: BrokerLogger;
  private readonly closeStores: () => Promise<void>;

  private constructor(fields: {
    core: BrokerCore;
    server: NetworkServer | null;
    admin: AdminServer | null;
    parts: readonly NodePart[];
    tracing: BrokerTracing | null;
    trimmer: MemoryTrimmer | null;
    logger: BrokerLogger;
    closeStores: () => Promise<void>;
  }) {
    this.core = fields.core;
    this.server = fields.server;
    this.admin = fields.admin;
    this.parts = fields.parts;
    this.tracing = fields.tracing;
    this.trimmer = fields.trimmer;
    this.logger = fields.logger;
    this.closeStores = fields.closeStores;
  }

  /** Starts every part in order (see the top of this file); `parts` start between storage and the listener. */
  static async start(
    options: BrokerNodeOptions,
    parts: readonly NodePartStarter[] = [],
  ): Promise<BrokerNode> {
    const logger = options.logger ?? silentLogger;
    const budget = await applyStartupFileBudget(
      {
        listens: options.port !== undefined,
        admin: options.admin !== undefined,
        ...(options.limits !== undefined ? { limits: options.limits } : {}),
        ...(options.raiseFileLimit !== undefined ? { raiseFileLimit: options.raiseFileLimit } : {}),
        ...(options.maxOpenFiles !== undefined ? { maxOpenFiles: options.maxOpenFiles } : {}),
      },
      logger,
    );
    // Checked before anything starts: a broker with authentication on and no user does not start.
    // A registry kept in etcd tells why it read everything again, or skipped a record: logged.
    const resynced = (store: string) => (reason: string) =>
      logger.warn({ store, reason }, 'a registry in etcd was read again or skipped a record');
    const openUsers = options.auth?.openUsers;
    const auth =
      options.auth !== undefined && options.auth.mechanisms.length > 0 && options.port !== undefined
        ? await BrokerAuthenticator.open(
            options.dataDir,
            {
              ...options.auth,
              ...(openUsers !== undefined
                ? { openUsers: (dataDir: string) => openUsers(dataDir, resynced('users')) }
                : {}),
            },
            {
              clientCertificates: options.tls !== undefined && (options.tls.clientAuth ?? 'none') !== 'none',
            },
          )
        : null;
    let auditLog: AuditLog | null | undefined = null;
    let authz: BrokerAuthorization | null = null;
    // The stores opened here (etcd connections in a cluster) close when the node stops.
    const closeStores = async () => {
      await authz?.close();
      await auth?.users.close();
    };
    authz =
      options.authz !== undefined && options.port !== undefined
        ? await BrokerAuthorization.open(options.dataDir, {
            onRefreshError: (error) => logger.warn({ reason: (error as Error).message }, 'ACLs not reloaded'),
            ...options.authz,
            ...(options.authz.openStore !== undefined
              ? { openStore: () => options.authz!.openStore!(resynced('acls')) }
              : {}),
            // Every denial goes to the audit log too (opened below, before the listener starts).
            onDenied: (denial) => {
              options.authz?.onDenied?.(denial);
              auditLog?.denied(
                denial.principal,
                denial.operation,
                describeResource(denial.resource.type, denial.resource.name),
                denial.source ?? null,
              );
            },
          }).catch(async (error: unknown) => {
            await closeStores();
            throw error;
          })
        : null;
    if (authz !== null) {
      // ACL changes over the wire are administrative changes: recorded like the others.
      const handleAclRequest = authz.handleAclRequest.bind(authz);
      authz.handleAclRequest = async (principal, opcode, payload) => {
        if (opcode !== Opcode.ACL_ALTER) return handleAclRequest(principal, opcode, payload);
        const caller = { principal, source: null };
        try {
          const answer = await handleAclRequest(principal, opcode, payload);
          auditLog?.record(aclAlterEvent(payload, caller));
          return answer;
        } catch (error) {
          auditLog?.record(aclAlterEvent(payload, caller, error as MemoryStreamerError));
          throw error;
        }
      };
    }
    const tracing = options.tracing !== undefined ? otlpTracing(options.tracing) : null;
    let core: BrokerCore;
    const coreOptions: BrokerCoreOptions = Object.assign(
      { ...options },
      ...parts.map((part) => part.coreOptions ?? {}),
      tracing !== null ? { tracer: tracing.tracer } : {},
    );
    try {
      core = await BrokerCore.start(coreOptions);
    } catch (error) {
      await closeStores();
      if (tracing !== null) await shutdownTracing(tracing);
      throw error;
    }
    let audit: Awaited<ReturnType<typeof openAudit>> = null;
    try {
      audit = await openAudit(options, auth !== null, logger, core, coreOptions.clusterMember === true);
      core.audit = audit?.log ?? null;
      auditLog = core.audit;
    } catch (error) {
      await closeStores();
      await core.close();
      if (tracing !== null) await shutdownTracing(tracing);
      throw error;
    }
    core.metrics.enabled = options.metrics ?? true;
    core.fileBudget = budget;
    const started: NodePart[] = [];
    let server: NetworkServer | null = null;
    let admin: AdminServer | null = null;
    let node: BrokerNode | null = null;
    const auditTopic = audit?.topic ?? null;
    // Stopped after the listener (its last records are written) and before storage closes.
    if (auditTopic !== null) {
      // Records of offline commands beside the running broker reach the topic within a second.
      const following = setInterval(() => audit?.log.follow(), AUDIT_FOLLOW_MS);
      following.unref();
      started.push({
        name: 'audit topic',
        stop: () => {
          clearInterval(following);
          return auditTopic.close();
        },
      });
    }
    try {
      // Before the listener exists, the configured certificates; after, the ones it reloaded.
      const context: NodePartContext = { tls: () => server?.tlsOptions ?? options.tls ?? null };
      for (const start of parts) started.push(await start(core, logger, context));
      // Tenants and quotas (<dataDir>/tenants.json) exist where principals do: with authentication on.
      if (auth !== null) {
        const quotas = await TenantQuotas.open({
          core,
          dataDir: options.dataDir,
          isSuperUser: (p) => auth.isSuperUser(p),
        });
        attachTenantQuotas(core, quotas);
        started.push({
          name: 'tenant quotas',
          stop: async () => {
            quotas.close();
            await quotas.store.close();
          },
        });
        // A cluster's registry is in etcd: every broker follows it, a change applies at once.
        if (options.openTenants !== undefined) {
          await quotas.store.useBackend(await options.openTenants(resynced('tenants')));
          quotas.store.onChange(() => void quotas.refresh());
          await quotas.refresh();
        }
      }
      if (options.port !== undefined) {
        const network = await NetworkServer.start({
          core,
          host: options.host ?? '127.0.0.1',
          port: options.port,
          limits: {
            ...options.limits,
            ...(budget !== null ? { maxConnections: budget.maxConnections } : {}),
          },
          ...(options.logger ? { logger: options.logger } : {}),
          ...(options.tls !== undefined ? { tls: options.tls } : {}),
          ...(auth !== null ? { auth } : {}),
          ...(authz !== null ? { authz } : {}),
        });
        server = network;
        // What METADATA tells clients to connect to: the listener, unless the core was given one.
        core.advertisedListener ??= network.address;
        core.connectionStats = () => ({ connections: network.connectionCount, heldBytes: network.heldBytes });
      }
      if (options.admin !== undefined) {
        admin = await AdminServer.start({
          core,
          metrics: core.metrics,
          host: options.admin.host ?? '127.0.0.1',
          port: options.admin.port,
          ...(options.tls !== undefined && options.admin.tls !== false ? { tls: options.tls } : {}),
          // Ready once the whole node has started, and no longer once it is stopping.
          ready: () => node !== null && !node.stopped,
        });
      }
    } catch (error) {
      await server?.shutdown({ deadlineMs: 0 });
      await stopParts(started, logger);
      await closeStores();
      await core.close();
      core.audit?.close();
      if (tracing !== null) await shutdownTracing(tracing);
      throw error;
    }
    const trimmer = startMemoryTrim(options.memoryTrim, core, server, logger);
    node = new BrokerNode({ core, server, admin, parts: started, tracing, trimmer, logger, closeStores });
    return node;
  }

  /** How the open-files limit is split (null where it cannot be read); see docs/operations.md. */
  get fileBudget(): FdBudget | null {
    return this.core.fileBudget;
  }

  /** host:port of the TCP listener, or null when the node does not listen. */
  get address(): { host: string; port: number } | null {
    return this.server?.address ?? null;
  }

  /**
   * Replaces the certificate, key and CA of the listener and the admin endpoint: new connections
   * get them, open ones keep theirs. Refused (INVALID_CONFIG, nothing changed) when they do not
   * load or the node was started without TLS.
   */
  reloadTls(tls: ServerTlsOptions): void {
    if (this.server === null || this.server.tlsOptions === null)
      throw errorOf('INVALID_CONFIG', 'the broker was started without TLS; a restart turns it on');
    const keys = ['tls.cert_file', 'tls.key_file', 'tls.ca_file'];
    try {
      this.server.reloadTls(tls);
      this.admin?.reloadTls(tls);
    } catch (error) {
      this.recordReload({ trigger: 'certificates', keys, error: (error as Error).message });
      throw error;
    }
    this.recordReload({ trigger: 'certificates', keys });
  }

  /**
   * Records a configuration reload in the audit log (when there is one): what triggered it
   * (SIGHUP, a file change, a cluster settings version), the settings applied, or why it was refused.
   */
  recordReload(reload: { trigger: string; keys: readonly string[]; error?: string }): void {
    this.core.audit?.record(configReloadEvent(reload));
  }

  /** Stops accepting, lets in-flight requests finish (up to the deadline), closes every log. */
  async stop(options: { deadlineMs?: number } = {}): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.trimmer?.stop();
    for (const part of this.parts) await part.beforeStop?.().catch(() => undefined);
    if (this.server !== null) await this.server.shutdown({ deadlineMs: options.deadlineMs ?? 5000 });
    if (this.admin !== null) await this.admin.close();
    await stopParts(this.parts, this.logger);
    await this.closeStores().catch(() => undefined);
    await this.core.close();
    this.core.audit?.close();
    if (this.tracing !== null) await shutdownTracing(this.tracing);
  }
}
