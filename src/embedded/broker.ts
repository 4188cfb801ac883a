// `Broker.start({ dataDir })`: the whole broker inside the calling process. `connect()` returns the
// same Client API as the network client, over an in-process transport; with `port` set the same
// broker also listens on TCP.

import { AdminServer } from '../broker/admin/admin-server.js';
import { BrokerCore, type BrokerCoreOptions } from '../broker/broker-core.js';
import {
  countOpenFds,
  type FdBudget,
  planFdBudget,
  type RaiseResult,
  raiseFdLimit,
  readFdLimits,
  storageCapFor,
} from '../broker/fd-budget.js';
import { NetworkServer, type ServerLimits } from '../broker/server/network-server.js';
import { DEFAULT_SERVER_LIMITS } from '../broker/server/server-limits.js';
import { Client, type ClientOptions } from '../client/client.js';
import { nativeMemory, trimMallocAsync } from '../common/native-memory.js';
import { type BrokerLogger, silentLogger } from '../metrics/logger.js';
import { type BrokerTracing, type OtlpTracingOptions, otlpTracing } from '../metrics/tracing.js';
import { configureOpenFiles, MIN_MAX_OPEN_FILES } from '../storage/open-files.js';
import { garbageCollector } from './collect-garbage.js';
import { InProcessTransport } from './in-process-transport.js';
import { DEFAULT_MEMORY_TRIM, MemoryTrimmer, type MemoryTrimSettings } from './memory-trimmer.js';

export interface BrokerOptions extends BrokerCoreOptions {
  /** Also listen on TCP at this port (0 picks a free one). */
  port?: number;
  host?: string;
  limits?: Partial<ServerLimits>;
  /** Where connection events and unexpected errors go (silent by default). */
  logger?: BrokerLogger;
  /** Serve /metrics, /healthz, /readyz and the read-only JSON API over HTTP here. */
  admin?: { host?: string; port: number };
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
 * Splits the process's file-descriptor limit (docs/operations.md, "File descriptors") before
 * storage opens: storage gets an open-file cap of its own (segments are opened on use and idle
 * ones closed under it, however many partitions there are), client connections what is left.
 */
function fileBudgetFor(
  options: BrokerOptions,
  raised: RaiseResult | null,
  logger: BrokerLogger,
): FdBudget | null {
  const limits = raised?.after ?? readFdLimits();
  const open = countOpenFds();
  if (limits === null || open === null) {
    logger.warn({}, 'the open-files limit is unknown (no /proc): no file-descriptor budget is applied');
    return null;
  }
  const listens = options.port !== undefined;
  const budget = planFdBudget({
    limit: limits.soft,
    openNow: open.total,
    storageOpen: 0,
    admin: options.admin !== undefined,
    // Without a TCP listener there are no client connections: storage may use their share.
    configuredMaxConnections: listens
      ? (options.limits?.maxConnections ?? DEFAULT_SERVER_LIMITS.maxConnections)
      : 0,
    storageCap: options.maxOpenFiles ?? storageCapFor(limits.soft),
  });
  const fields = {
    limit: budget.limit,
    hardLimit: limits.hard,
    raisedFrom:
      raised !== null && raised.before !== null && raised.before.soft !== limits.soft
        ? raised.before.soft
        : null,
    openAtStart: open.total,
    storageOpenFiles: options.maxOpenFiles ?? storageCapFor(limits.soft),
    adminReserve: budget.adminReserve,
    processReserve: budget.processReserve,
    maxConnections: budget.maxConnections,
    configuredMaxConnections: budget.configuredMaxConnections,
  };
  if (raised?.problem)
    logger.warn({ ...fields, reason: raised.problem }, 'the open-files limit could not be raised');
  if (budget.maxConnections < budget.configuredMaxConnections) {
    logger.warn(
      fields,
      'file descriptors: client connections capped below server.max_connections to fit the open-files limit (raise ulimit -n / LimitNOFILE= for more)',
    );
  } else logger.info(fields, 'file descriptors budgeted');
  return budget;
}

/** The periodic malloc_trim (null when turned off); logs once whether it can run and why not. */
function startMemoryTrimmer(
  options: BrokerOptions,
  core: BrokerCore,
  server: NetworkServer | null,
  logger: BrokerLogger,
): MemoryTrimmer | null {
  if (options.memoryTrim === false) return null;
  const settings = { ...DEFAULT_MEMORY_TRIM, ...options.memoryTrim };
  const trimmer = new MemoryTrimmer(settings, {
    status: nativeMemory,
    trim: trimMallocAsync,
    heldBytes: () => server?.heldBytes ?? 0,
    collectGarbage: server !== null ? garbageCollector() : null,
    onGc: (durationMs) => {
      core.metrics.recordForcedGc();
      logger.debug({ durationMs }, 'full garbage collection after connections released their buffers');
    },
    onError: (error) =>
      logger.warn({ error: (error as Error).message }, 'returning freed memory to the OS failed'),
    onTrim: (record) => {
      core.metrics.recordMemoryTrim(record.returnedBytes);
      logger.debug({ ...record }, 'freed malloc memory returned to the OS');
    },
  });
  if (nativeMemory.available) {
    logger.info(
      { glibc: nativeMemory.glibcVersion, ...settings },
      'freed malloc memory is returned to the OS',
    );
    trimmer.start();
  } else {
    logger.info(
      { reason: nativeMemory.reason },
      'freed malloc memory is not returned to the OS (no malloc_trim)',
    );
  }
  return trimmer;
}

export class Broker {
  readonly core: BrokerCore;
  readonly server: NetworkServer | null;
  readonly admin: AdminServer | null;
  private stopped = false;
  private readonly tracing: BrokerTracing | null;
  private readonly trimmer: MemoryTrimmer | null;

  private constructor(
    core: BrokerCore,
    server: NetworkServer | null,
    admin: AdminServer | null,
    tracing: BrokerTracing | null,
    trimmer: MemoryTrimmer | null,
  ) {
    this.core = core;
    this.server = server;
    this.admin = admin;
    this.tracing = tracing;
    this.trimmer = trimmer;
  }

  static async start(options: BrokerOptions): Promise<Broker> {
    const logger = options.logger ?? silentLogger;
    // Before storage opens: a data directory with many partitions needs the higher limit.
    const raised = options.raiseFileLimit === false ? null : raiseFdLimit();
    const budget = fileBudgetFor(options, raised, logger);
    // Process-wide, like the limit it comes from: the last broker started in a process sets it.
    const maxOpenFiles = options.maxOpenFiles ?? (budget !== null ? storageCapFor(budget.limit) : null);
    if (maxOpenFiles !== null)
      await configureOpenFiles({ maxOpenFiles: Math.max(MIN_MAX_OPEN_FILES, maxOpenFiles) });
    const tracing = options.tracing !== undefined ? otlpTracing(options.tracing) : null;
    const core = await BrokerCore.start(tracing !== null ? { ...options, tracer: tracing.tracer } : options);
    core.metrics.enabled = options.metrics ?? true;
    core.fileBudget = budget;
    let server: NetworkServer | null = null;
    let admin: AdminServer | null = null;
    let broker: Broker | null = null;
    try {
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
        });
        server = network;
        core.connectionStats = () => ({ connections: network.connectionCount, heldBytes: network.heldBytes });
      }
      if (options.admin !== undefined) {
        admin = await AdminServer.start({
          core,
          metrics: core.metrics,
          host: options.admin.host ?? '127.0.0.1',
          port: options.admin.port,
          ready: () => broker !== null && !broker.stopped,
        });
      }
    } catch (error) {
      await server?.shutdown({ deadlineMs: 0 });
      await core.close();
      await tracing?.shutdown();
      throw error;
    }
    const trimmer = startMemoryTrimmer(options, core, server, logger);
    broker = new Broker(core, server, admin, tracing, trimmer);
    return broker;
  }

  /** How the open-files limit is split (null where it cannot be read); see docs/operations.md. */
  get fileBudget(): FdBudget | null {
    return this.core.fileBudget;
  }

  /** host:port of the TCP listener, or null when the broker is in-process only. */
  get address(): { host: string; port: number } | null {
    return this.server?.address ?? null;
  }

  /** A client over the in-process transport. */
  connect(options: ClientOptions = {}): Client {
    return new Client(new InProcessTransport(this.core), options);
  }

  /** Stops accepting, lets in-flight requests finish (up to the deadline), closes every log. */
  async stop(options: { deadlineMs?: number } = {}): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.trimmer?.stop();
    if (this.server !== null) await this.server.shutdown({ deadlineMs: options.deadlineMs ?? 5000 });
    if (this.admin !== null) await this.admin.close();
    await this.core.close();
    // Last, so the spans of the final requests are exported too. An unreachable collector must
    // not make stopping fail or hang: the spans are given up after a short deadline.
    if (this.tracing !== null) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.tracing.shutdown().catch(() => undefined),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, 2000);
          timer.unref();
        }),
      ]);
      clearTimeout(timer);
    }
  }
}
