// Cluster-wide dynamic settings (the broker settings that can change without a restart), kept in
// etcd with their whole history: every change writes a new numbered version and the current
// pointer in one compare-and-swap transaction, so two operators changing settings at once cannot
// both win, and `rollback` is a new version equal to an old one (history only grows).
// Brokers learn of a change through the metadata watch (key config/current).
// The caller validates settings (the broker's config schema); this module stores and orders them.

import { errorOf } from '../../protocol/error-codes.js';
import type { ControlPlane } from './control-plane.js';
import { KEYS } from './metadata-keys.js';

export type Settings = Readonly<Record<string, string | number | boolean>>;

export interface ConfigVersion {
  readonly version: number;
  readonly settings: Settings;
  readonly changedBy: string;
  readonly changedAtMs: number;
  /** What the change was, e.g. "rollback to version 3". */
  readonly note: string;
}

export function decodeConfigVersion(key: string, bytes: Buffer | string): ConfigVersion {
  let record: Partial<ConfigVersion>;
  try {
    record = JSON.parse(typeof bytes === 'string' ? bytes : bytes.toString('utf8')) as Partial<ConfigVersion>;
  } catch {
    throw errorOf('INVALID_CLUSTER_METADATA', `${key}: not JSON`);
  }
  const { version, settings, changedBy, changedAtMs, note } = record;
  if (
    typeof version !== 'number' ||
    !Number.isSafeInteger(version) ||
    version < 1 ||
    typeof settings !== 'object' ||
    settings === null ||
    Array.isArray(settings) ||
    Object.values(settings).some((v) => !['string', 'number', 'boolean'].includes(typeof v)) ||
    typeof changedBy !== 'string' ||
    typeof changedAtMs !== 'number' ||
    typeof note !== 'string'
  )
    throw errorOf('INVALID_CLUSTER_METADATA', `${key}: not a configuration version`);
  return { version, settings, changedBy, changedAtMs, note };
}

export class ClusterConfig {
  private readonly plane: ControlPlane;
  private readonly clock: () => number;

  constructor(plane: ControlPlane, clock: () => number = Date.now) {
    this.plane = plane;
    this.clock = clock;
  }

  /** The current version, or null before the first change. */
  async current(): Promise<ConfigVersion | null> {
    const { value } = await this.plane.read(KEYS.configCurrent);
    return value === null ? null : decodeConfigVersion(KEYS.configCurrent, value);
  }

  /** Every version, oldest first. */
  async history(): Promise<ConfigVersion[]> {
    const entries = await this.plane.list(KEYS.configHistoryPrefix);
    return entries.map((entry) => decodeConfigVersion(entry.key, entry.value));
  }

  /**
   * Applies `change` to the current settings (a key set to null is removed) and writes the result
   * as a new version. Retries when another change landed in between (re-reading and re-applying),
   * so changes to different keys at the same time both take effect.
   */
  async change(
    change: Readonly<Record<string, string | number | boolean | null>>,
    changedBy: string,
    note = 'change',
  ): Promise<ConfigVersion> {
    return await this.write(
      (settings) => {
        const next: Record<string, string | number | boolean> = { ...settings };
        for (const [key, value] of Object.entries(change)) {
          if (value === null) delete next[key];
          else next[key] = value;
        }
        return next;
      },
      changedBy,
      note,
    );
  }

  /** Makes the settings of `version` current again, as a new version. */
  async rollback(version: number, changedBy: string): Promise<ConfigVersion> {
    const { value } = await this.plane.read(KEYS.configVersion(version));
    if (value === null) throw errorOf('INVALID_REQUEST', `configuration version ${version} does not exist`);
    const target = decodeConfigVersion(KEYS.configVersion(version), value);
    return await this.write(() => target.settings, changedBy, `rollback to version ${version}`);
  }

  private async write(
    next: (settings: Settings) => Settings,
    changedBy: string,
    note: string,
  ): Promise<ConfigVersion> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const { value, modRevision } = await this.plane.read(KEYS.configCurrent);
      const current = value === null ? null : decodeConfigVersion(KEYS.configCurrent, value);
      const version: ConfigVersion = {
        version: (current?.version ?? 0) + 1,
        settings: next(current?.settings ?? {}),
        changedBy,
        changedAtMs: this.clock(),
        note,
      };
      const encoded = JSON.stringify(version);
      if (
        await this.plane.writeIfUnchanged(KEYS.configCurrent, modRevision, [
          [KEYS.configCurrent, encoded],
          [KEYS.configVersion(version.version), encoded],
        ])
      )
        return version;
    }
    throw errorOf('CONTROL_PLANE_UNAVAILABLE', 'configuration kept changing under 20 attempts to write it');
  }
}
