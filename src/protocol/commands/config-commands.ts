// Cluster-wide configuration: CONFIG_SET, CONFIG_HISTORY, CONFIG_ROLLBACK (any broker of a cluster
// answers; a broker without a cluster refuses with CLUSTER_CONFIG_NEEDS_CLUSTER). Layouts
// (little-endian; string = u16 length + UTF-8; opt<T> = u8 presence + T; int = i64; a value is the
// JSON text of a string, number or boolean):
//
// Setting        key string | value string (JSON)
// Change         key string | from opt<string (JSON)> | to opt<string (JSON)>   (absent: not set)
// ConfigVersion  version int | topic opt<string> (absent: the brokers' settings) | changedBy string |
//                changedAtMs int | note string | count u32 | Setting × count (every setting of the
//                scope after the change) | count u32 | Change × count (against the scope's
//                previous version)
//
// CONFIG_SET      req: changedBy string | note string | count u32 | (key string | value string) × count |
//                      unsetCount u32 | key string × unsetCount
//                      (values as the user wrote them, e.g. "64MiB"; the broker checks and converts;
//                      an unset key is no longer set by the cluster: each broker's own value applies)
//                 res: ConfigVersion
// CONFIG_HISTORY  req: scope u8 (0 every scope, 1 the brokers' settings, 2 one topic) |
//                      [topic string when scope = 2]
//                 res: count u32 | ConfigVersion × count (oldest first)
// CONFIG_ROLLBACK req: version int | changedBy string; res: ConfigVersion (the new version)

import type { BinaryReader } from '../codec/binary-reader.js';
import type { BinaryWriter } from '../codec/binary-writer.js';
import { errorOf } from '../error-codes.js';
import { Opcode } from '../opcodes.js';
import { defineCommand, readOptional, writeOptional } from './command.js';

export type ConfigValue = string | number | boolean;

export interface ConfigChangeView {
  key: string;
  /** null: the setting was not set before (the broker's own value applied). */
  from: ConfigValue | null;
  /** null: the setting is no longer set (the broker's own value applies again). */
  to: ConfigValue | null;
}

export interface ConfigVersionView {
  version: number;
  /** The topic whose configuration this version holds; null for the brokers' settings. */
  topic: string | null;
  changedBy: string;
  changedAtMs: number;
  note: string;
  /** Every setting of the scope after this version. */
  settings: Record<string, ConfigValue>;
  /** What changed against the scope's previous version. */
  changes: ConfigChangeView[];
}

export interface ConfigSetRequest {
  /** Setting key → value as written in the configuration file or on the command line. */
  settings: Record<string, string>;
  /** Keys the cluster stops setting: every broker goes back to its own value for them. */
  unset?: string[];
  /** Who makes the change (the CLI sends user@host); the broker adds itself. */
  changedBy?: string;
  note?: string;
}

/** Without `topic`, every scope; `topic: null` the brokers' settings; a name, that topic's. */
export interface ConfigHistoryRequest {
  topic?: string | null;
}

export interface ConfigHistoryResponse {
  versions: ConfigVersionView[];
}

export interface ConfigRollbackRequest {
  version: number;
  changedBy?: string;
}

function writeValue(w: BinaryWriter, value: ConfigValue): void {
  w.string(JSON.stringify(value));
}

function readValue(r: BinaryReader): ConfigValue {
  const text = r.string();
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw errorOf('MALFORMED_PAYLOAD', `configuration value ${JSON.stringify(text)} is not JSON`);
  }
  if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean')
    throw errorOf('MALFORMED_PAYLOAD', `configuration value ${text}: a string, number or boolean`);
  return value;
}

function writeVersion(w: BinaryWriter, v: ConfigVersionView): void {
  w.int(v.version);
  writeOptional(w, v.topic ?? undefined, (topic) => w.string(topic));
  w.string(v.changedBy).int(v.changedAtMs).string(v.note);
  const settings = Object.entries(v.settings);
  w.u32(settings.length);
  for (const [key, value] of settings) {
    w.string(key);
    writeValue(w, value);
  }
  w.u32(v.changes.length);
  for (const change of v.changes) {
    w.string(change.key);
    writeOptional(w, change.from ?? undefined, (value) => writeValue(w, value));
    writeOptional(w, change.to ?? undefined, (value) => writeValue(w, value));
  }
}

function readVersion(r: BinaryReader): ConfigVersionView {
  const version = r.int();
  const topic = readOptional(r, () => r.string()) ?? null;
  const changedBy = r.string();
  const changedAtMs = r.int();
  const note = r.string();
  const settings: Record<string, ConfigValue> = {};
  const settingCount = r.count(4);
  for (let i = 0; i < settingCount; i++) {
    const key = r.string();
    settings[key] = readValue(r);
  }
  const changes: ConfigChangeView[] = [];
  const changeCount = r.count(4);
  for (let i = 0; i < changeCount; i++) {
    const key = r.string();
    const from = readOptional(r, () => readValue(r)) ?? null;
    const to = readOptional(r, () => readValue(r)) ?? null;
    changes.push({ key, from, to });
  }
  return { version, topic, changedBy, changedAtMs, note, settings, changes };
}

export const configSetCommand = defineCommand<ConfigSetRequest, ConfigVersionView>({
  opcode: Opcode.CONFIG_SET,
  encodeRequest(w, request) {
    w.string(request.changedBy ?? '').string(request.note ?? '');
    const settings = Object.entries(request.settings);
    w.u32(settings.length);
    for (const [key, value] of settings) w.string(key).string(value);
    const unset = request.unset ?? [];
    w.u32(unset.length);
    for (const key of unset) w.string(key);
  },
  decodeRequest(r) {
    const changedBy = r.string();
    const note = r.string();
    const settings: Record<string, string> = {};
    const count = r.count(4);
    for (let i = 0; i < count; i++) {
      const key = r.string();
      settings[key] = r.string();
    }
    const unset: string[] = [];
    const unsetCount = r.count(2);
    for (let i = 0; i < unsetCount; i++) unset.push(r.string());
    return {
      settings,
      ...(unset.length === 0 ? {} : { unset }),
      ...(changedBy === '' ? {} : { changedBy }),
      ...(note === '' ? {} : { note }),
    };
  },
  encodeResponse: writeVersion,
  decodeResponse: readVersion,
});

export const configHistoryCommand = defineCommand<ConfigHistoryRequest, ConfigHistoryResponse>({
  opcode: Opcode.CONFIG_HISTORY,
  encodeRequest(w, request) {
    if (request.topic === undefined) w.u8(0);
    else if (request.topic === null) w.u8(1);
    else w.u8(2).string(request.topic);
  },
  decodeRequest(r) {
    const scope = r.u8();
    if (scope === 0) return {};
    if (scope === 1) return { topic: null };
    if (scope === 2) return { topic: r.string() };
    throw errorOf('MALFORMED_PAYLOAD', `configuration history scope ${scope} is not known`);
  },
  encodeResponse(w, response) {
    w.u32(response.versions.length);
    for (const version of response.versions) writeVersion(w, version);
  },
  decodeResponse(r) {
    const count = r.count(8);
    const versions: ConfigVersionView[] = [];
    for (let i = 0; i < count; i++) versions.push(readVersion(r));
    return { versions };
  },
});

export const configRollbackCommand = defineCommand<ConfigRollbackRequest, ConfigVersionView>({
  opcode: Opcode.CONFIG_ROLLBACK,
  encodeRequest(w, request) {
    w.int(request.version).string(request.changedBy ?? '');
  },
  decodeRequest(r) {
    const version = r.int();
    const changedBy = r.string();
    return changedBy === '' ? { version } : { version, changedBy };
  },
  encodeResponse: writeVersion,
  decodeResponse: readVersion,
});
