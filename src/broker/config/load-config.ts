// Loads the broker's configuration from defaults, a TOML file, MEMORYSTREAMER_<SECTION>_<KEY>
// environment variables and command-line flags, in that order of precedence. Every problem is
// collected and reported together, each naming the key, where the value came from, the value, and
// what is allowed; unknown keys are errors, not silently ignored.

import { readFile } from 'node:fs/promises';
import { parse as parseToml, TomlError } from 'smol-toml';
import { MemoryStreamerError } from '../../common/errors.js';
import { ERROR_TABLE } from '../../protocol/error-codes.js';
import { SETTINGS, type Setting, type SettingKey } from './config-schema.js';

export type ConfigSource = 'default' | 'file' | 'env' | 'flag';

export interface LoadedConfig {
  values: Record<SettingKey, number | string>;
  sources: Record<SettingKey, ConfigSource>;
  file: string | null;
}

export class ConfigError extends MemoryStreamerError {
  readonly problems: string[];
  constructor(problems: string[]) {
    super({ name: 'INVALID_CONFIG', ...ERROR_TABLE.INVALID_CONFIG }, problems.join('; '));
    this.problems = problems;
  }
}

const UNITS_SIZE: Record<string, number> = {
  b: 1,
  kb: 1000,
  kib: 1024,
  mb: 1e6,
  mib: 1024 ** 2,
  gb: 1e9,
  gib: 1024 ** 3,
  tb: 1e12,
  tib: 1024 ** 4,
};
const UNITS_TIME: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SETTING_BY_KEY = new Map<string, Setting>(SETTINGS.map((s) => [s.key, s]));

export function envName(key: string): string {
  return `MEMORYSTREAMER_${key.replace('.', '_').toUpperCase()}`;
}

function parseUnit(text: string, units: Record<string, number>): number | null {
  const match = /^(-?\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(text.trim());
  if (!match) return null;
  const unit = match[2]!.toLowerCase();
  const factor = unit === '' ? 1 : units[unit];
  if (factor === undefined) return null;
  const value = Number(match[1]) * factor;
  return Number.isFinite(value) ? Math.round(value) : null;
}

function isHttpUrl(text: string): boolean {
  if (text.length > 2048) return false;
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}

function allowedText(setting: Setting): string {
  const t = setting.type;
  switch (t.kind) {
    case 'int':
      return `an integer from ${t.min} to ${t.max}`;
    case 'size':
      return `a size from ${t.min} to ${t.max} bytes (a number of bytes or e.g. "64MiB")${t.allowUnlimited ? ', or -1 / "unlimited"' : ''}`;
    case 'duration':
      return `a duration from ${t.min} to ${t.max} ms (a number of ms or e.g. "500ms", "30s", "7d")${t.allowForever ? ', or -1 / "forever"' : ''}`;
    case 'string':
      return `a non-empty string of at most ${t.maxLength} characters`;
    case 'url':
      return 'an http:// or https:// URL, or "" for none';
    case 'enum':
      return `one of ${t.choices.join(', ')}`;
    case 'list':
      return `a list of ${t.itemDoc} (a TOML array, or comma-separated)`;
  }
}

/** Converts and checks one raw value; returns the value or a problem description. */
function coerce(setting: Setting, raw: unknown): { value: number | string } | { problem: string } {
  const t = setting.type;
  const bad = { problem: `${JSON.stringify(raw)}: expected ${allowedText(setting)}` };
  if (t.kind === 'string') {
    return typeof raw === 'string' && raw.length > 0 && raw.length <= t.maxLength ? { value: raw } : bad;
  }
  if (t.kind === 'enum') {
    // Switches are enums of 'true' | 'false'; TOML writes them as booleans.
    const text = typeof raw === 'boolean' ? String(raw) : raw;
    return typeof text === 'string' && t.choices.includes(text) ? { value: text } : bad;
  }
  if (t.kind === 'list') {
    const items = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(',') : null;
    if (items === null || !items.every((item) => typeof item === 'string')) return bad;
    const trimmed = [...new Set(items.map((item) => item.trim()).filter((item) => item !== ''))];
    const fits = (item: string) =>
      (t.choices === undefined || t.choices.includes(item)) &&
      (t.pattern === undefined || t.pattern.test(item));
    return trimmed.every(fits) ? { value: trimmed.join(',') } : bad;
  }
  if (t.kind === 'url')
    return typeof raw === 'string' && (raw === '' || isHttpUrl(raw)) ? { value: raw } : bad;
  let value: number | null;
  if (typeof raw === 'number' || typeof raw === 'bigint') value = Number(raw);
  else if (typeof raw === 'string') {
    const text = raw.trim().toLowerCase();
    if ((text === 'unlimited' && t.kind === 'size') || (text === 'forever' && t.kind === 'duration'))
      value = -1;
    else if (t.kind === 'int') value = /^-?\d+$/.test(text) ? Number(text) : null;
    else value = parseUnit(text, t.kind === 'size' ? UNITS_SIZE : UNITS_TIME);
  } else value = null;
  if (value === null || !Number.isSafeInteger(value)) return bad;
  const unlimited = (t.kind === 'size' && t.allowUnlimited) || (t.kind === 'duration' && t.allowForever);
  if (value === -1 && unlimited) return { value };
  return value >= t.min && value <= t.max ? { value } : bad;
}

/**
 * `file:line:column: not valid TOML: reason`, then the offending line with a caret under the column,
 * as compilers print it (smol-toml's TomlError carries line, column and that excerpt).
 */
export function describeTomlError(file: string, error: unknown): string {
  if (!(error instanceof TomlError)) return `${file} is not valid TOML: ${(error as Error).message}`;
  const [first = '', ...rest] = error.message.split('\n');
  const reason = first.replace(/^Invalid TOML document: /, '');
  const excerpt = rest.filter((line) => line.trim() !== '').join('\n');
  return `${file}:${error.line}:${error.column}: not valid TOML (line ${error.line}, column ${error.column}): ${reason}${excerpt === '' ? '' : `\n${excerpt}`}`;
}

export interface ConfigInputs {
  /** Path of a TOML file; null for none. */
  file?: string | null;
  env?: NodeJS.ProcessEnv;
  /** Values from command-line flags, by key (`server.port`). */
  flags?: Partial<Record<SettingKey, string | number>>;
}

export async function loadConfig(inputs: ConfigInputs = {}): Promise<LoadedConfig> {
  const values = {} as Record<SettingKey, number | string>;
  const sources = {} as Record<SettingKey, ConfigSource>;
  for (const s of SETTINGS) {
    values[s.key] = s.default;
    sources[s.key] = 'default';
  }
  const problems: string[] = [];
  const apply = (key: string, raw: unknown, source: ConfigSource, where: string) => {
    const setting = SETTING_BY_KEY.get(key);
    if (setting === undefined) {
      problems.push(`${where}: unknown setting ${JSON.stringify(key)}`);
      return;
    }
    const result = coerce(setting, raw);
    if ('problem' in result) problems.push(`${where} (${key}) ${result.problem}`);
    else {
      values[setting.key as SettingKey] = result.value;
      sources[setting.key as SettingKey] = source;
    }
  };

  const file = inputs.file ?? null;
  if (file !== null) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      throw new ConfigError([`cannot read configuration file ${file}: ${(error as Error).message}`]);
    }
    let parsed: Record<string, unknown>;
    try {
      parsed = parseToml(text) as Record<string, unknown>;
    } catch (error) {
      throw new ConfigError([describeTomlError(file, error)]);
    }
    for (const [section, entries] of Object.entries(parsed)) {
      if (entries === null || typeof entries !== 'object' || Array.isArray(entries)) {
        problems.push(`${file}: ${JSON.stringify(section)} must be a [section] table`);
        continue;
      }
      for (const [name, raw] of Object.entries(entries)) apply(`${section}.${name}`, raw, 'file', `${file}`);
    }
  }

  const env = inputs.env ?? {};
  const byEnv = new Map(SETTINGS.map((s) => [envName(s.key), s.key]));
  for (const [name, raw] of Object.entries(env)) {
    // MEMORYSTREAMER_BROKERS, MEMORYSTREAMER_PASSWORD and MEMORYSTREAMER_CLI_* are the CLI's; MEMORYSTREAMER_NATIVE_* turn
    // the native addons off (docs/native-crc32c.md, docs/native-memory.md); none is a broker setting.
    if (
      !name.startsWith('MEMORYSTREAMER_') ||
      name === 'MEMORYSTREAMER_BROKERS' ||
      name === 'MEMORYSTREAMER_PASSWORD' ||
      name.startsWith('MEMORYSTREAMER_CLI_') ||
      name.startsWith('MEMORYSTREAMER_NATIVE_') ||
      raw === undefined
    )
      continue;
    const key = byEnv.get(name);
    if (key === undefined) problems.push(`environment: unknown variable ${name}`);
    else apply(key, raw, 'env', `environment ${name}`);
  }

  for (const [key, raw] of Object.entries(inputs.flags ?? {})) {
    if (raw !== undefined) apply(key, raw, 'flag', 'flag');
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return { values, sources, file };
}
