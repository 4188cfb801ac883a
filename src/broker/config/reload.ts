// Configuration reload: which settings changed between two loads, which of those take effect
// without a restart, and which would need one (they are reported and left as they are).
import { SETTINGS, type SettingKey } from './config-schema.js';
import type { LoadedConfig } from './load-config.js';

export interface ConfigChange {
  /** Changed settings that apply now. */
  applied: SettingKey[];
  /** Changed settings that only a restart can apply; the running values stay. */
  needRestart: SettingKey[];
}

export function diffConfig(running: LoadedConfig, next: LoadedConfig): ConfigChange {
  const change: ConfigChange = { applied: [], needRestart: [] };
  for (const setting of SETTINGS) {
    if (running.values[setting.key] === next.values[setting.key]) continue;
    if ('reloadable' in setting && setting.reloadable) change.applied.push(setting.key);
    else change.needRestart.push(setting.key);
  }
  return change;
}

/** The running configuration with only the reloadable changes of `next` taken over. */
export function mergeReloadable(
  running: LoadedConfig,
  next: LoadedConfig,
  change: ConfigChange,
): LoadedConfig {
  const values = { ...running.values };
  const sources = { ...running.sources };
  for (const key of change.applied) {
    values[key] = next.values[key];
    sources[key] = next.sources[key];
  }
  return { values, sources, file: running.file };
}
