// The cluster-wide configuration as a part of a broker node (started after the cluster member):
// answers CONFIG_SET / CONFIG_HISTORY / CONFIG_ROLLBACK and records topic alters (the service),
// and watches the brokers' current settings version in etcd, handing every new version to
// `onVersion` — once at start (a broker that joins later takes the current version at once), then
// at each change. Applying the settings is the caller's: the broker process lays them over its
// own configuration (serve.ts), the same way a reload of its file does.

import type { NodePartStarter } from '../../broker/broker-node.js';
import type { BrokerLogger } from '../../metrics/logger.js';
import { ClusterConfig, type ConfigVersion, decodeConfigVersion } from '../control-plane/cluster-config.js';
import { parseClusterUrl } from '../control-plane/cluster-url.js';
import { ControlPlane } from '../control-plane/control-plane.js';
import type { MetadataEvent } from '../control-plane/metadata-cache.js';
import { KEYS } from '../control-plane/metadata-keys.js';
import { ClusterConfigService } from './cluster-config-service.js';

export interface ClusterConfigPartOptions {
  /** `etcd://host:port[,host:port…][/name]`, as the cluster member's. */
  readonly cluster: string;
  readonly brokerId: number;
  /** The brokers' settings version now current (null: none was ever set). */
  readonly onVersion: (version: ConfigVersion | null) => void;
  readonly connectTimeoutMs?: number;
}

/** Follows `config/current` through etcd's watch, from one consistent read on. */
export class ConfigVersionWatch {
  private stopWatch: (() => Promise<void>) | null = null;
  private lastVersion: number | null | undefined = undefined;
  private stopped = false;

  constructor(
    private readonly plane: ControlPlane,
    private readonly onVersion: (version: ConfigVersion | null) => void,
    private readonly logger: BrokerLogger,
  ) {}

  /** Reads the current version (handing it over) and watches from that read on. */
  async start(): Promise<void> {
    await this.stopWatch?.();
    const snapshot = await this.plane.snapshot();
    this.take(snapshot.events);
    const current = snapshot.events.some((event) => event.key === KEYS.configCurrent);
    if (!current) this.deliver(null);
    this.stopWatch = await this.plane.watch(
      snapshot.revision,
      (events) => this.take(events),
      (error) => {
        this.logger.warn({ reason: error.message }, 'cluster configuration watch lost; reading again');
        if (!this.stopped)
          void this.start().catch((failure: Error) =>
            this.logger.warn({ reason: failure.message }, 'cluster configuration not read'),
          );
      },
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.stopWatch?.();
    this.stopWatch = null;
  }

  private take(events: readonly MetadataEvent[]): void {
    const last = events.filter((event) => event.key === KEYS.configCurrent).at(-1);
    if (last === undefined) return;
    if (last.type === 'delete') {
      this.deliver(null);
      return;
    }
    try {
      this.deliver(decodeConfigVersion(last.key, last.value));
    } catch (error) {
      this.logger.warn({ reason: (error as Error).message }, 'cluster configuration not applied');
    }
  }

  private deliver(version: ConfigVersion | null): void {
    const number = version?.version ?? null;
    if (number === this.lastVersion) return;
    this.lastVersion = number;
    this.onVersion(version);
  }
}

export function clusterConfigPart(options: ClusterConfigPartOptions): NodePartStarter {
  return async (core, logger) => {
    const plane = await ControlPlane.connect({
      address: parseClusterUrl(options.cluster),
      ...(options.connectTimeoutMs !== undefined ? { connectTimeoutMs: options.connectTimeoutMs } : {}),
    });
    const watch = new ConfigVersionWatch(plane, options.onVersion, logger);
    try {
      await watch.start();
    } catch (error) {
      await plane.close();
      throw error;
    }
    core.clusterConfig = new ClusterConfigService(new ClusterConfig(plane), core, options.brokerId, logger);
    return {
      name: 'cluster configuration',
      stop: async () => {
        core.clusterConfig = null;
        await watch.stop();
        await plane.close();
      },
    };
  };
}
