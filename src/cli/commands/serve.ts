// `memorystreamer serve`: runs a broker in this process until SIGTERM or SIGINT, then shuts down
// gracefully (GOAWAY, in-flight requests finish, logs close). Settings come from defaults, a TOML
// file (--config), MEMORYSTREAMER_* environment variables and flags, in that order; in a cluster
// the cluster-wide settings (memorystreamer config set) override those for their keys.

import { resolve } from 'node:path';
import type { Command } from 'commander';
import { BrokerNode } from '../../broker/broker-node.js';
import { overlayClusterSettings } from '../../broker/config/cluster-settings.js';
import type { SettingKey } from '../../broker/config/config-schema.js';
import { type ConfigInputs, type LoadedConfig, loadConfig } from '../../broker/config/load-config.js';
import { diffConfig, mergeReloadable } from '../../broker/config/reload.js';
import { clusterPart } from '../../cluster/cluster-node.js';
import { clusterConfigPart } from '../../cluster/config/cluster-config-part.js';
import type { ConfigVersion, Settings } from '../../cluster/control-plane/cluster-config.js';
import { type ConfigurableLogger, createLogger } from '../../metrics/logger.js';
import { errorOf } from '../../protocol/error-codes.js';
import type { UserStore } from '../../security/user-store.js';
import { brokerOptionsFrom, clusterSettingsFrom, tlsFilesFrom } from '../broker-options.js';
import type { CliContext } from '../context.js';
import { parseCores, serveCores } from '../multi-core.js';
import { asUsage } from '../output.js';
import { reloadTlsOnChange } from '../tls-reload.js';
import { watchFileChanges } from '../watch-file.js';

/**
 * A listener that cannot bind, said in terms of the setting to change: which listener, which
 * address, why, and the flag and variable that move it.
 */
function listenProblem(
  error: unknown,
  options: { host?: string; port?: number; admin?: { host?: string; port: number } },
): Error | null {
  const failure = error as NodeJS.ErrnoException & { address?: string; port?: number };
  const why =
    failure.code === 'EADDRINUSE'
      ? 'the address is already in use (another broker or program listens there)'
      : failure.code === 'EACCES'
        ? 'permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)'
        : failure.code === 'EADDRNOTAVAIL'
          ? 'no network interface has this address'
          : null;
  if (why === null) return null;
  const admin =
    options.admin !== undefined && failure.port === options.admin.port && failure.port !== options.port;
  const where = `${failure.address ?? '?'}:${failure.port ?? '?'}`;
  const hint = admin
    ? 'admin.port / admin.host (--admin-port, MEMORYSTREAMER_ADMIN_PORT; admin.enabled = false turns it off)'
    : 'server.port / server.host (--port, --host, MEMORYSTREAMER_SERVER_PORT)';
  return errorOf(
    'INVALID_CONFIG',
    `cannot listen on ${where} for the ${admin ? 'admin HTTP endpoint' : 'broker'}: ${why}; change ${hint}`,
    {
      cause: error,
    },
  );
}

/**
 * The running configuration of a broker process: its own (defaults, file, environment, flags)
 * with the cluster's settings laid over it (a cluster value wins for its key; a key the cluster
 * does not set keeps the broker's own value). Reloaded on SIGHUP, when the file changes and when
 * the cluster's settings change: reloadable settings apply at once; others are reported as
 * needing a restart; a bad new configuration is refused and the running one stays.
 */
export class RunningConfig {
  private config: LoadedConfig;
  /** The broker's own configuration as last loaded without a problem. */
  private own: LoadedConfig;
  private cluster: Settings = {};
  private clusterVersion: number | null = null;
  private broker: BrokerNode | null = null;
  private reloading = false;
  private again: string | null = null;

  constructor(
    initial: LoadedConfig,
    private readonly inputs: ConfigInputs,
    private readonly logger: ConfigurableLogger,
  ) {
    this.config = initial;
    this.own = initial;
  }

  /** The configuration in effect now. */
  get current(): LoadedConfig {
    return this.config;
  }

  /** Starts applying to `broker`, first the cluster's settings heard while it started. */
  attach(broker: BrokerNode): void {
    this.broker = broker;
    if (this.clusterVersion !== null)
      void this.reload(`cluster configuration version ${this.clusterVersion}`);
  }

  /** The cluster's current settings version (null: none was ever set). */
  clusterVersionChanged(version: ConfigVersion | null): void {
    this.cluster = version?.settings ?? {};
    this.clusterVersion = version?.version ?? 0;
    if (this.broker !== null) void this.reload(`cluster configuration version ${this.clusterVersion}`);
  }

  async reload(why: string): Promise<void> {
    const broker = this.broker;
    if (broker === null) return;
    if (this.reloading) {
      // Read again once this reload is done: the file or the cluster may have changed meanwhile.
      this.again = why;
      return;
    }
    this.reloading = true;
    const logger = this.logger;
    try {
      try {
        this.own = await loadConfig(this.inputs);
      } catch (error) {
        // A cluster change still applies over the last good file; the file's problem is said.
        logger.error(
          { trigger: why, reason: (error as Error).message },
          'configuration reload refused; the running configuration stays',
        );
        broker.recordReload({ trigger: why, keys: [], error: (error as Error).message });
      }
      // Triggers that come while a reload runs are folded into the next one: the line says which
      // cluster version the applied settings are from, whatever the trigger.
      const clusterVersion = this.clusterVersion;
      const overlay = await overlayClusterSettings(this.own, this.cluster);
      if (overlay.ignored.length > 0)
        logger.warn({ settings: overlay.ignored.join('; ') }, 'cluster settings this broker does not take');
      const next = overlay.config;
      const change = diffConfig(this.config, next);
      if (change.needRestart.length > 0)
        logger.warn({ keys: change.needRestart.join(',') }, 'changed settings need a restart');
      if (change.applied.length === 0) return;
      this.config = mergeReloadable(this.config, next, change);
      const applied = brokerOptionsFrom(this.config, (path) => resolve(path));
      if (broker.server !== null && applied.limits !== undefined) {
        for (const key of RELOADABLE_LIMITS) {
          const value = applied.limits[key];
          if (value !== undefined) broker.server.limits[key] = value;
        }
        // The file-descriptor budget caps connections whatever the configuration says.
        const budget = broker.fileBudget;
        if (budget !== null && broker.server.limits.maxConnections > budget.allowedConnections) {
          logger.warn(
            { configured: broker.server.limits.maxConnections, allowed: budget.allowedConnections },
            'server.max_connections is above what the open-files limit allows; capped',
          );
          broker.server.limits.maxConnections = budget.allowedConnections;
        }
      }
      broker.core.setTopicDefaults(applied.topicDefaults ?? {}, applied.defaultPartitions ?? 1);
      broker.core.metrics.enabled = applied.metrics !== false;
      logger.setLevel(applied.logLevel);
      const fromCluster = change.applied.filter((key) => overlay.sources[key] === 'cluster');
      logger.info(
        {
          trigger: why,
          ...(clusterVersion !== null && clusterVersion > 0 ? { clusterVersion } : {}),
          keys: change.applied.join(','),
          ...(fromCluster.length > 0 ? { fromCluster: fromCluster.join(',') } : {}),
        },
        'configuration reloaded',
      );
      broker.recordReload({ trigger: why, keys: change.applied });
    } catch (error) {
      logger.error(
        { trigger: why, reason: (error as Error).message },
        'configuration reload refused; the running configuration stays',
      );
      broker.recordReload({ trigger: why, keys: [], error: (error as Error).message });
    } finally {
      this.reloading = false;
      if (this.again !== null) {
        const next = this.again;
        this.again = null;
        void this.reload(next);
      }
    }
  }
}

interface ServeFlags {
  config?: string;
  host?: string;
  port?: string;
  dataDir?: string;
  partitions?: string;
  shutdownDeadlineMs?: string;
  adminPort?: string;
  cluster?: string;
  brokerId?: string;
  advertise?: string;
  cores?: string;
}

/** Server limits that a reload changes in place (each backs a reloadable setting). */
const RELOADABLE_LIMITS = [
  'maxConnections',
  'maxConnectionsPerAddress',
  'handshakeTimeoutMs',
  'idleTimeoutMs',
  'connectionBudgetBytes',
  'globalBudgetBytes',
  'maxOutboundBytes',
] as const;

/** The shortcut flags and the settings they set. */
export function flagSettings(flags: ServeFlags): Partial<Record<SettingKey, string>> {
  const settings: Partial<Record<SettingKey, string>> = {};
  if (flags.host !== undefined) settings['server.host'] = flags.host;
  if (flags.port !== undefined) settings['server.port'] = flags.port;
  if (flags.dataDir !== undefined) settings['storage.data_dir'] = flags.dataDir;
  if (flags.partitions !== undefined) settings['topics.partitions'] = flags.partitions;
  if (flags.shutdownDeadlineMs !== undefined) settings['server.shutdown_deadline'] = flags.shutdownDeadlineMs;
  if (flags.adminPort !== undefined) settings['admin.port'] = flags.adminPort;
  if (flags.cluster !== undefined) settings['cluster.etcd'] = flags.cluster;
  if (flags.brokerId !== undefined) settings['cluster.broker_id'] = flags.brokerId;
  if (flags.advertise !== undefined) settings['cluster.advertise'] = flags.advertise;
  return settings;
}

export function registerServe(program: Command, context: CliContext): void {
  program
    .command('serve')
    .description('run a broker (alone by default, no external services; --cluster joins a cluster on etcd)')
    .option('-c, --config <file>', 'TOML configuration file (see docs/configuration.md)')
    .option('--host <host>', 'address to listen on (server.host, default 127.0.0.1)')
    .option('--port <port>', 'TCP port for clients, 0 picks a free one (server.port, default 7400)')
    .option(
      '--admin-port <port>',
      'HTTP port of /metrics, /healthz and the admin API (admin.port, default 7401)',
    )
    .option('--data-dir <dir>', 'directory for topics and logs (storage.data_dir, default ./data)')
    .option('--partitions <n>', 'default partition count of new topics (topics.partitions, default 1)')
    .option(
      '--cluster <etcd://host:port>',
      'join the cluster on this etcd (cluster.etcd; default: a single broker)',
    )
    .option('--broker-id <n>', "this broker's id in the cluster (cluster.broker_id)")
    .option(
      '--advertise <host:port>',
      'where other brokers and clients reach this broker (cluster.advertise)',
    )
    .option(
      '--cores <n>',
      'broker processes on this machine, a number or auto (one per core): above 1 they form one cluster, on a local etcd unless --cluster is given; clients connect to any of ports --port, --port+1, …',
    )
    .option(
      '--shutdown-deadline-ms <ms>',
      'how long in-flight requests may take at shutdown (server.shutdown_deadline)',
    )
    .addHelpText(
      'after',
      '\nExamples:\n  memorystreamer serve\n  memorystreamer serve --config /etc/memorystreamer.toml\n  MEMORYSTREAMER_SERVER_PORT=7500 memorystreamer serve --data-dir /var/lib/memorystreamer\n  memorystreamer serve --cores auto        (one broker per core; needs etcd: apt-get install etcd-server)',
    )
    .action(async (flags: ServeFlags) => {
      const inputs = { file: flags.config ?? null, env: context.env, flags: flagSettings(flags) };
      const cores = await asUsage(() => parseCores(flags.cores));
      if (cores > 1) return await serveCores(cores, inputs, context);
      const config = await asUsage(() => loadConfig(inputs));
      const { shutdownDeadlineMs, logLevel, logFormat, ...options } = await asUsage(() =>
        brokerOptionsFrom(config, (path) => resolve(path)),
      );
      const pretty = logFormat === 'pretty' || (logFormat === 'auto' && process.stderr.isTTY === true);
      const logger = createLogger({ level: logLevel, pretty });
      const cluster = await asUsage(() => clusterSettingsFrom(config));
      const running = new RunningConfig(config, inputs, logger);
      const parts =
        cluster === null
          ? []
          : [
              clusterPart({
                cluster: cluster.etcd,
                brokerId: cluster.brokerId,
                advertise: cluster.advertise,
                leaseTtlSeconds: cluster.leaseTtlSeconds,
                fencingTimeMs: cluster.fencingTimeMs,
                heartbeatIntervalMs: cluster.heartbeatIntervalMs,
                replication: {
                  replicaLagTimeMs: cluster.replicaLagTimeMs,
                  antiEntropyIntervalMs: cluster.antiEntropyIntervalMs,
                },
              }),
              clusterConfigPart({
                cluster: cluster.etcd,
                brokerId: cluster.brokerId,
                onVersion: (version) => running.clusterVersionChanged(version),
              }),
            ];
      // A cluster's users are in etcd: their store's connection closes once the broker has stopped.
      const userStores: UserStore[] = [];
      const openUsers = options.auth?.openUsers;
      const auth =
        options.auth === undefined || openUsers === undefined
          ? options.auth
          : {
              ...options.auth,
              openUsers: async (dir: string) => {
                const store = await openUsers(dir);
                userStores.push(store);
                return store;
              },
            };
      const closeUsers = () => Promise.all(userStores.map((store) => store.close()));
      const broker = await BrokerNode.start(
        { ...options, ...(auth !== undefined ? { auth } : {}), logger },
        parts,
      ).catch(async (error: unknown) => {
        await closeUsers();
        throw listenProblem(error, options) ?? error;
      });
      running.attach(broker);
      const tlsReload = reloadTlsOnChange(
        broker,
        tlsFilesFrom(config, (path) => resolve(path)),
        logger,
      );
      const onHangup = () => void running.reload('SIGHUP');
      process.on('SIGHUP', onHangup);
      let debounce: NodeJS.Timeout | null = null;
      const watcher =
        config.file === null
          ? null
          : watchFileChanges(
              config.file,
              () => {
                if (debounce !== null) clearTimeout(debounce);
                debounce = setTimeout(() => void running.reload('file change'), 200);
              },
              {
                onFallback: (reason) =>
                  logger.warn({ reason }, 'watching the configuration file by polling every second'),
              },
            );

      await new Promise<void>((done) => {
        const stop = (signal: string) => {
          process.off('SIGTERM', onTerm);
          process.off('SIGINT', onInt);
          process.off('SIGHUP', onHangup);
          watcher?.close();
          tlsReload.close();
          if (debounce !== null) clearTimeout(debounce);
          context.print({ event: 'stopping', signal }, `received ${signal}, shutting down`);
          broker
            .stop({ deadlineMs: shutdownDeadlineMs })
            .catch((error: unknown) =>
              logger.error({ reason: (error as Error).message }, 'shutdown did not finish cleanly'),
            )
            .then(closeUsers)
            .then(() => done());
        };
        const onTerm = () => stop('SIGTERM');
        const onInt = () => stop('SIGINT');
        process.on('SIGTERM', onTerm);
        process.on('SIGINT', onInt);
        // Announce only now: whoever waits for this line (a supervisor, a test) may signal at
        // once, and every signal must find its handler.
        logger.info({ dataDir: options.dataDir, config: config.file ?? 'none' }, 'broker started');
        const address = broker.address!;
        const admin = broker.admin?.address ?? null;
        context.print(
          {
            event: 'listening',
            host: address.host,
            port: address.port,
            tls: options.tls !== undefined,
            adminPort: admin?.port ?? null,
            dataDir: options.dataDir,
            pid: process.pid,
          },
          `memorystreamer broker listening on ${address.host}:${address.port}${options.tls !== undefined ? ' (TLS)' : ''}${admin ? `, status page and admin API ${broker.admin?.secure === true ? 'https' : 'http'}://${admin.host}:${admin.port}/` : ''} (data in ${options.dataDir}, pid ${process.pid})`,
        );
      });
      context.print({ event: 'stopped' }, 'broker stopped');
    });
}
