// The brokers' settings that a cluster sets for all its brokers at once: only the reloadable ones
// (a change takes effect on every broker without a restart). On a broker, a value set for the
// cluster overrides the configuration file, the environment and the flags for that key; a key the
// cluster does not set keeps the broker's own value.

import { errorOf } from '../../protocol/error-codes.js';
import { SETTINGS, type SettingKey } from './config-schema.js';
import { ConfigError, type ConfigSource, type LoadedConfig, loadConfig } from './load-config.js';

export type EffectiveSource = ConfigSource | 'cluster';

/** The settings that can be set cluster-wide. */
export const CLUSTER_SETTING_KEYS: readonly SettingKey[] = SETTINGS.filter(
  (setting) => 'reloadable' in setting && setting.reloadable,
).map((setting) => setting.key);

const KNOWN = new Set<string>(SETTINGS.map((setting) => setting.key));
const RELOADABLE = new Set<string>(CLUSTER_SETTING_KEYS);

/**
 * Checks that `keys` name settings the cluster can set: INVALID_CONFIG for an unknown key,
 * CONFIG_NOT_RELOADABLE for one that needs a restart.
 */
export function checkClusterKeys(keys: readonly string[]): void {
  const unknown = keys.filter((key) => !KNOWN.has(key));
  if (unknown.length > 0)
    throw errorOf(
      'INVALID_CONFIG',
      `unknown setting ${unknown.map((key) => JSON.stringify(key)).join(', ')} (see docs/configuration.md)`,
    );
  const restartOnly = keys.filter((key) => !RELOADABLE.has(key));
  if (restartOnly.length > 0)
    throw errorOf(
      'CONFIG_NOT_RELOADABLE',
      `${restartOnly.join(', ')} only change${restartOnly.length === 1 ? 's' : ''} with a restart; cluster-wide settings: ${CLUSTER_SETTING_KEYS.join(', ')}`,
    );
}

/**
 * Checks settings given for the cluster and converts them as the configuration file would
 * ("64MiB" → bytes, "30s" → ms). INVALID_CONFIG for an unknown key or a bad value (every problem
 * named), CONFIG_NOT_RELOADABLE for a key that needs a restart.
 */
export async function checkClusterSettings(
  raw: Readonly<Record<string, string | number | boolean>>,
): Promise<Partial<Record<SettingKey, string | number>>> {
  const keys = Object.keys(raw);
  if (keys.length === 0) throw errorOf('INVALID_CONFIG', 'no setting given (key=value)');
  checkClusterKeys(keys);
  let loaded: LoadedConfig;
  try {
    loaded = await loadConfig({
      flags: Object.fromEntries(
        keys.map((key) => [key, typeof raw[key] === 'boolean' ? String(raw[key]) : raw[key]]),
      ) as Partial<Record<SettingKey, string | number>>,
    });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    // The problems read "flag (key) value: expected …": these values did not come from flags.
    throw errorOf('INVALID_CONFIG', error.problems.map((p) => p.replace(/^flag \(/, '(')).join('; '));
  }
  return Object.fromEntries(keys.map((key) => [key, loaded.values[key as SettingKey]]));
}

export interface ClusterOverlay {
  /** The broker's own configuration with the cluster's values in place. */
  readonly config: LoadedConfig;
  /** Where each value comes from, `cluster` for the cluster's. */
  readonly sources: Record<SettingKey, EffectiveSource>;
  /** Cluster settings this broker does not take (unknown here, restart-only, or a bad value). */
  readonly ignored: string[];
}

/** Lays the cluster's settings over a broker's own configuration (cluster values win). */
export async function overlayClusterSettings(
  own: LoadedConfig,
  cluster: Readonly<Record<string, string | number | boolean>>,
): Promise<ClusterOverlay> {
  const values = { ...own.values };
  const sources: Record<SettingKey, EffectiveSource> = { ...own.sources };
  const ignored: string[] = [];
  for (const [key, value] of Object.entries(cluster)) {
    try {
      const checked = await checkClusterSettings({ [key]: value });
      values[key as SettingKey] = checked[key as SettingKey]!;
      sources[key as SettingKey] = 'cluster';
    } catch (error) {
      ignored.push(`${key}: ${(error as Error).message}`);
    }
  }
  return { config: { values, sources: own.sources, file: own.file }, sources, ignored };
}
