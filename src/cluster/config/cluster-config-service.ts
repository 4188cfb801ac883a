// What a broker of a cluster answers to CONFIG_SET, CONFIG_HISTORY and CONFIG_ROLLBACK, and how
// a topic alter enters the configuration history.
//
// One history, numbered in one sequence, holds two kinds of version (cluster-config.ts): the
// brokers' reloadable settings, and one topic's configuration. Any broker changes the brokers'
// settings (a compare-and-swap in etcd; every broker applies them from its watch). A topic's
// configuration is the topic's record, which only the controller writes: a topic alter with
// `config`, and a rollback to a topic's version, run through the controller (NOT_CONTROLLER
// elsewhere) and record the topic's whole configuration afterwards as a version. The first
// recorded change of a topic also records the configuration it had before, so a rollback can
// return to it.

import type { BrokerCore } from '../../broker/broker-core.js';
import { checkClusterKeys, checkClusterSettings } from '../../broker/config/cluster-settings.js';
import type { ClusterConfigRequests } from '../../broker/replica-hooks.js';
import type { BrokerLogger } from '../../metrics/logger.js';
import type {
  ConfigHistoryRequest,
  ConfigHistoryResponse,
  ConfigRollbackRequest,
  ConfigSetRequest,
  ConfigVersionView,
} from '../../protocol/commands/config-commands.js';
import type { AlterTopicRequest, TopicConfigView, TopicView } from '../../protocol/commands/data-types.js';
import { errorOf } from '../../protocol/error-codes.js';
import {
  type ClusterConfig,
  type ConfigVersion,
  type Settings,
  withChanges,
} from '../control-plane/cluster-config.js';

export class ClusterConfigService implements ClusterConfigRequests {
  constructor(
    private readonly config: ClusterConfig,
    private readonly core: BrokerCore,
    private readonly brokerId: number,
    private readonly logger: BrokerLogger,
  ) {}

  async set(request: ConfigSetRequest): Promise<ConfigVersionView> {
    const unset = request.unset ?? [];
    const checked =
      Object.keys(request.settings).length === 0 && unset.length > 0
        ? {}
        : await checkClusterSettings(request.settings);
    checkClusterKeys(unset);
    const overlap = unset.filter((key) => key in checked);
    if (overlap.length > 0) throw errorOf('INVALID_CONFIG', `${overlap.join(', ')}: both set and unset`);
    const keys = [...Object.keys(checked), ...unset];
    const change: Record<string, string | number | null> = { ...checked };
    for (const key of unset) change[key] = null;
    const what = [
      ...(Object.keys(checked).length > 0 ? [`set ${Object.keys(checked).join(', ')}`] : []),
      ...(unset.length > 0 ? [`unset ${unset.join(', ')}`] : []),
    ];
    const version = await this.config.change(
      change,
      this.who(request.changedBy),
      request.note ?? what.join('; '),
    );
    this.logger.info({ version: version.version, keys: keys.join(',') }, 'cluster configuration changed');
    return await this.view(version);
  }

  async history(request: ConfigHistoryRequest): Promise<ConfigHistoryResponse> {
    const all = withChanges(await this.config.history());
    const wanted =
      request.topic === undefined
        ? all
        : all.filter(({ version }) => (version.topic ?? null) === request.topic);
    return { versions: wanted.map(({ version, changes }) => ({ ...plain(version), changes: [...changes] })) };
  }

  async rollback(request: ConfigRollbackRequest): Promise<ConfigVersionView> {
    const target = await this.config.version(request.version);
    if (target === null)
      throw errorOf(
        'UNKNOWN_CONFIG_VERSION',
        `configuration version ${request.version} does not exist (memorystreamer config history lists them)`,
      );
    const changedBy = this.who(request.changedBy);
    if (target.topic === undefined) {
      const version = await this.config.rollback(request.version, changedBy);
      this.logger.info(
        { version: version.version, to: request.version },
        'cluster configuration rolled back',
      );
      return await this.view(version);
    }
    const topics = this.core.clusterTopics;
    if (topics === null) throw errorOf('CLUSTER_CONFIG_NEEDS_CLUSTER', 'this broker is not in a cluster');
    const config = target.settings as Partial<TopicConfigView>;
    await topics.alter({ name: target.topic, config });
    const version = await this.config.recordTopic(
      target.topic,
      target.settings,
      changedBy,
      `rollback to version ${request.version}`,
    );
    this.logger.info(
      { topic: target.topic, version: version.version, to: request.version },
      'topic configuration rolled back',
    );
    return await this.view(version);
  }

  /**
   * Runs a topic alter (through the controller) and records the topic's configuration after it.
   * The alter has happened when recording fails (etcd lost meanwhile): that is logged, and the
   * alter is still answered as done.
   */
  async alterTopic(request: AlterTopicRequest, alter: () => Promise<TopicView>): Promise<TopicView> {
    if (Object.keys(request.config ?? {}).length === 0) return await alter();
    const before = (await this.core.execute('listTopics', {})).topics.find((t) => t.name === request.name);
    const view = await alter();
    const after: Settings = { ...(before ?? view).config, ...(request.config ?? {}) };
    const keys = Object.keys(request.config ?? {});
    try {
      await this.config.recordTopic(
        request.name,
        after,
        this.who(undefined),
        `alter ${keys.join(', ')}`,
        before === undefined ? undefined : { settings: { ...before.config }, createdAtMs: before.createdAt },
      );
    } catch (error) {
      this.logger.warn(
        { topic: request.name, reason: (error as Error).message },
        'topic altered, but its configuration version was not recorded',
      );
    }
    return view;
  }

  private who(changedBy: string | undefined): string {
    return `${changedBy ?? 'a client'} via broker ${this.brokerId}`;
  }

  private async view(version: ConfigVersion): Promise<ConfigVersionView> {
    const scoped = withChanges(await this.config.history({ topic: version.topic ?? null }));
    const changes = scoped.find((entry) => entry.version.version === version.version)?.changes ?? [];
    return { ...plain(version), changes: [...changes] };
  }
}

function plain(version: ConfigVersion): Omit<ConfigVersionView, 'changes'> {
  return {
    version: version.version,
    topic: version.topic ?? null,
    changedBy: version.changedBy,
    changedAtMs: version.changedAtMs,
    note: version.note,
    settings: { ...version.settings },
  };
}
