// Cluster-wide dynamic configuration, kept in etcd with its whole history. There are two kinds of
// scope, numbered in one sequence of versions:
//
// - the brokers' reloadable settings (no `topic`): `config/current` holds the latest version, which
//   every broker watches and applies;
// - one topic's configuration (`topic` set): `config/topics/<topic>` holds the latest version of
//   that topic (the topic's record, written by the controller, stays the truth brokers run by).
//
// Every write puts the new version under `config/history/<version>`, the scope's pointer and the
// sequence counter `config/sequence` in one transaction that compares the counter's revision: every
// config write changes the counter, so two writers can never both win and the numbers have no
// gaps. A rollback is a new version equal to an old one: the history only grows.
// The caller validates settings (the broker's config schema); this module stores and orders them.
//
//   config/sequence          the last version number written (decimal text)
//   config/topics/<topic>    ConfigVersion (JSON) of that topic's latest version

import { errorOf } from '../../protocol/error-codes.js';
import type { ControlPlane } from './control-plane.js';
import { KEYS } from './metadata-keys.js';

export type SettingValue = string | number | boolean;
export type Settings = Readonly<Record<string, SettingValue>>;

export interface ConfigVersion {
  readonly version: number;
  /** The topic whose configuration this version holds; absent for the brokers' settings. */
  readonly topic?: string;
  /** Every setting of the scope after this change (not only the changed ones). */
  readonly settings: Settings;
  readonly changedBy: string;
  readonly changedAtMs: number;
  /** What the change was, e.g. "rollback to version 3". */
  readonly note: string;
}

/** One setting that differs between two versions of a scope (null: not set on that side). */
export interface SettingChange {
  readonly key: string;
  readonly from: SettingValue | null;
  readonly to: SettingValue | null;
}

export const CONFIG_SEQUENCE_KEY = 'config/sequence';
export const configTopicKey = (topic: string): string => `config/topics/${topic}`;

export function decodeConfigVersion(key: string, bytes: Buffer | string): ConfigVersion {
  let record: Partial<ConfigVersion>;
  try {
    record = JSON.parse(typeof bytes === 'string' ? bytes : bytes.toString('utf8')) as Partial<ConfigVersion>;
  } catch {
    throw errorOf('INVALID_CLUSTER_METADATA', `${key}: not JSON`);
  }
  const { version, topic, settings, changedBy, changedAtMs, note } = record;
  if (
    typeof version !== 'number' ||
    !Number.isSafeInteger(version) ||
    version < 1 ||
    (topic !== undefined && (typeof topic !== 'string' || topic === '')) ||
    typeof settings !== 'object' ||
    settings === null ||
    Array.isArray(settings) ||
    Object.values(settings).some((v) => !['string', 'number', 'boolean'].includes(typeof v)) ||
    typeof changedBy !== 'string' ||
    typeof changedAtMs !== 'number' ||
    typeof note !== 'string'
  )
    throw errorOf('INVALID_CLUSTER_METADATA', `${key}: not a configuration version`);
  return topic === undefined
    ? { version, settings, changedBy, changedAtMs, note }
    : { version, topic, settings, changedBy, changedAtMs, note };
}

/** The settings that differ from `before` to `after`, by key. */
export function settingChanges(before: Settings, after: Settings): SettingChange[] {
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  return keys
    .filter((key) => before[key] !== after[key])
    .map((key) => ({ key, from: before[key] ?? null, to: after[key] ?? null }));
}

/**
 * Each version with what changed against the previous version of the same scope (the first
 * version of a scope changes from nothing). `versions` oldest first, as `history()` returns them.
 */
export function withChanges(
  versions: readonly ConfigVersion[],
): Array<{ version: ConfigVersion; changes: SettingChange[] }> {
  const last = new Map<string, Settings>();
  return versions.map((version) => {
    const scope = version.topic ?? '';
    const changes = settingChanges(last.get(scope) ?? {}, version.settings);
    last.set(scope, version.settings);
    return { version, changes };
  });
}

export class ClusterConfig {
  private readonly plane: ControlPlane;
  private readonly clock: () => number;

  constructor(plane: ControlPlane, clock: () => number = Date.now) {
    this.plane = plane;
    this.clock = clock;
  }

  /** The brokers' current settings version, or null before the first change. */
  async current(): Promise<ConfigVersion | null> {
    const { value } = await this.plane.read(KEYS.configCurrent);
    return value === null ? null : decodeConfigVersion(KEYS.configCurrent, value);
  }

  /** The latest recorded version of a topic's configuration, or null when none was recorded. */
  async currentOfTopic(topic: string): Promise<ConfigVersion | null> {
    const { value } = await this.plane.read(configTopicKey(topic));
    return value === null ? null : decodeConfigVersion(configTopicKey(topic), value);
  }

  /** One version, or null when there is none of that number. */
  async version(version: number): Promise<ConfigVersion | null> {
    if (!Number.isSafeInteger(version) || version < 1) return null;
    const { value } = await this.plane.read(KEYS.configVersion(version));
    return value === null ? null : decodeConfigVersion(KEYS.configVersion(version), value);
  }

  /**
   * Versions oldest first: every scope when `scope` is not given, the brokers' settings for
   * `{ topic: null }`, one topic's for `{ topic: name }`.
   */
  async history(scope?: { topic: string | null }): Promise<ConfigVersion[]> {
    const entries = await this.plane.list(KEYS.configHistoryPrefix);
    const all = entries.map((entry) => decodeConfigVersion(entry.key, entry.value));
    if (scope === undefined) return all;
    return all.filter((version) => (version.topic ?? null) === scope.topic);
  }

  /**
   * Applies `change` to the brokers' current settings (a key set to null is removed) and writes
   * the result as a new version. Retries when another change landed in between (re-reading and
   * re-applying), so changes to different keys at the same time both take effect.
   */
  async change(
    change: Readonly<Record<string, SettingValue | null>>,
    changedBy: string,
    note = 'change',
  ): Promise<ConfigVersion> {
    const [version] = await this.write(null, (current) => {
      const next: Record<string, SettingValue> = { ...current?.settings };
      for (const [key, value] of Object.entries(change)) {
        if (value === null) delete next[key];
        else next[key] = value;
      }
      return [{ settings: next, changedBy, note }];
    });
    return version!;
  }

  /**
   * Records a topic's configuration after a change made through its controller. When `before`
   * is given (the configuration before the change, and when the topic was created) and the topic
   * has no version since it was created (none at all, or only of an earlier topic of that name,
   * deleted since), the configuration before the change is recorded first (note "before the
   * first recorded change", or "as found before this change" after an earlier topic's versions),
   * so that a rollback can return to it. `createdAtMs` is the creation time of the copy the
   * caller looked at (0 when it has none: then only a topic without versions gets one).
   */
  async recordTopic(
    topic: string,
    settings: Settings,
    changedBy: string,
    note: string,
    before?: { settings: Settings; createdAtMs: number },
  ): Promise<ConfigVersion> {
    const versions = await this.write(topic, (current) => [
      ...(before === undefined || (current !== null && current.changedAtMs >= before.createdAtMs)
        ? []
        : [
            {
              settings: before.settings,
              changedBy,
              note: current === null ? 'before the first recorded change' : 'as found before this change',
            },
          ]),
      { settings, changedBy, note },
    ]);
    return versions[versions.length - 1]!;
  }

  /**
   * Makes the settings of brokers' version `version` current again, as a new version.
   * UNKNOWN_CONFIG_VERSION when there is no such version; a topic's version is rolled back by
   * altering the topic through its controller and recording that (see `recordTopic`).
   */
  async rollback(version: number, changedBy: string): Promise<ConfigVersion> {
    const target = await this.version(version);
    if (target === null)
      throw errorOf('UNKNOWN_CONFIG_VERSION', `configuration version ${version} does not exist`);
    if (target.topic !== undefined)
      throw errorOf(
        'INVALID_REQUEST',
        `configuration version ${version} is of topic ${target.topic}: roll it back through the topic's controller`,
      );
    const [written] = await this.write(null, () => [
      { settings: target.settings, changedBy, note: `rollback to version ${version}` },
    ]);
    return written!;
  }

  /**
   * Writes the versions `next` returns for `topic`'s scope (null: the brokers') on top of its
   * current settings, numbered after the last version of any scope, compare-and-swap on the
   * sequence counter. Retries on a race with another writer.
   */
  private async write(
    topic: string | null,
    next: (current: ConfigVersion | null) => Array<{ settings: Settings; changedBy: string; note: string }>,
  ): Promise<ConfigVersion[]> {
    const pointer = topic === null ? KEYS.configCurrent : configTopicKey(topic);
    for (let attempt = 0; attempt < 20; attempt++) {
      const sequence = await this.plane.read(CONFIG_SEQUENCE_KEY);
      const { value } = await this.plane.read(pointer);
      const current = value === null ? null : decodeConfigVersion(pointer, value);
      // A history written before the counter existed numbered brokers' versions by config/current.
      const brokers = topic === null ? current : await this.current();
      let last = Math.max(
        sequence.value === null ? 0 : Number(sequence.value.toString('utf8')),
        brokers?.version ?? 0,
      );
      if (!Number.isSafeInteger(last))
        throw errorOf('INVALID_CLUSTER_METADATA', `${CONFIG_SEQUENCE_KEY}: not a version number`);
      const now = this.clock();
      const versions = next(current).map(
        (entry): ConfigVersion => ({
          version: ++last,
          ...(topic === null ? {} : { topic }),
          settings: entry.settings,
          changedBy: entry.changedBy,
          changedAtMs: now,
          note: entry.note,
        }),
      );
      const puts: Array<[string, string]> = versions.map((v) => [
        KEYS.configVersion(v.version),
        JSON.stringify(v),
      ]);
      puts.push(
        [pointer, JSON.stringify(versions[versions.length - 1])],
        [CONFIG_SEQUENCE_KEY, String(last)],
      );
      if (await this.plane.writeIfUnchanged(CONFIG_SEQUENCE_KEY, sequence.modRevision, puts)) return versions;
    }
    throw errorOf('CONTROL_PLANE_UNAVAILABLE', 'configuration kept changing under 20 attempts to write it');
  }
}
