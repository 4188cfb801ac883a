// Connection profiles for the CLI: a TOML file (MEMORYSTREAMER_CLI_CONFIG, or
// ~/.config/memorystreamer/cli.toml) with named broker lists, so scripts can say `--profile prod`.
//
//   [profiles.default]
//   brokers = "127.0.0.1:7400"
//   [profiles.prod]
//   brokers = "10.0.0.5:7400,10.0.0.6:7400"
//   tls_ca = "/etc/memorystreamer/ca.pem"     # TLS; also tls = true (system CAs), tls_cert, tls_key
//
// Precedence: --broker, then MEMORYSTREAMER_BROKERS, then the profile (--profile, else `default`
// when the file has one), then 127.0.0.1:7400. A profile's TLS settings apply when the profile
// gives the brokers; the --tls* flags and MEMORYSTREAMER_CLI_TLS* variables win over them. Relative
// paths are relative to the profiles file.

import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { describeTomlError } from '../broker/config/load-config.js';
import { errorOf } from '../protocol/error-codes.js';

export const DEFAULT_BROKER = '127.0.0.1:7400';

export function profilesPath(env: NodeJS.ProcessEnv): string {
  return (
    env.MEMORYSTREAMER_CLI_CONFIG ?? join(env.HOME ?? homedir(), '.config', 'memorystreamer', 'cli.toml')
  );
}

async function readProfiles(path: string, required: boolean): Promise<Record<string, unknown> | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (!required && (error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw errorOf('INVALID_CONFIG', `cannot read the CLI profiles file ${path}: ${(error as Error).message}`);
  }
  try {
    return parseToml(text) as Record<string, unknown>;
  } catch (error) {
    throw errorOf('INVALID_CONFIG', describeTomlError(path, error));
  }
}

/** The TLS settings of a profile: files as absolute paths. */
export interface ProfileTls {
  tls?: boolean;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

const PROFILE_TLS_FILES = { tls_ca: 'caFile', tls_cert: 'certFile', tls_key: 'keyFile' } as const;

function profileTls(path: string, name: string, profile: Record<string, unknown>): ProfileTls {
  const tls: ProfileTls = {};
  if (profile.tls !== undefined) {
    if (typeof profile.tls !== 'boolean')
      throw errorOf('INVALID_CONFIG', `${path}: profiles.${name}.tls must be true or false`);
    tls.tls = profile.tls;
  }
  for (const [key, field] of Object.entries(PROFILE_TLS_FILES)) {
    const value = profile[key];
    if (value === undefined) continue;
    if (typeof value !== 'string' || value === '')
      throw errorOf('INVALID_CONFIG', `${path}: profiles.${name}.${key} must be the path of a PEM file`);
    tls[field] = resolve(dirname(path), value);
  }
  return tls;
}

export async function resolveBrokers(options: {
  broker?: string | undefined;
  profile?: string | undefined;
  env: NodeJS.ProcessEnv;
}): Promise<string> {
  return (await resolveConnection(options)).brokers;
}

/** The brokers to reach and, when a profile gives them, the profile's TLS settings. */
export async function resolveConnection(options: {
  broker?: string | undefined;
  profile?: string | undefined;
  env: NodeJS.ProcessEnv;
}): Promise<{ brokers: string; tls: ProfileTls }> {
  if (options.broker !== undefined) return { brokers: options.broker, tls: {} };
  if (options.env.MEMORYSTREAMER_BROKERS !== undefined && options.profile === undefined)
    return { brokers: options.env.MEMORYSTREAMER_BROKERS, tls: {} };
  const path = profilesPath(options.env);
  const parsed = await readProfiles(path, options.profile !== undefined);
  const name = options.profile ?? 'default';
  const profiles = (parsed?.profiles ?? {}) as Record<string, Record<string, unknown>>;
  const profile = profiles[name];
  if (profile === undefined) {
    if (options.profile !== undefined) {
      throw errorOf(
        'INVALID_CONFIG',
        `profile ${JSON.stringify(name)} is not in ${path} (profiles: ${Object.keys(profiles).join(', ') || 'none'})`,
      );
    }
    return { brokers: DEFAULT_BROKER, tls: {} };
  }
  if (typeof profile.brokers !== 'string' || profile.brokers.trim() === '') {
    throw errorOf(
      'INVALID_CONFIG',
      `${path}: profiles.${name}.brokers must be a string like "host:port,host:port"`,
    );
  }
  return { brokers: profile.brokers, tls: profileTls(path, name, profile) };
}
