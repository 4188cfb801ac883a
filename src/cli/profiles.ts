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
//
// A profile may also name the user to authenticate as (the password is never in the file: it comes
// from --password-stdin or MEMORYSTREAMER_PASSWORD):
//   [profiles.prod]
//   user = "alice"
//   sasl_mechanism = "SCRAM-SHA-512"   # default SCRAM-SHA-256
// or a file holding a bearer token (a JWT; read again on every connection, so a tool that renews it
// in place is followed):
//   token_file = "/run/secrets/memorystreamer.jwt"

import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { describeTomlError } from '../broker/config/load-config.js';
import type { SaslOptions } from '../client/sasl.js';
import { errorOf } from '../protocol/error-codes.js';
import { isScramMechanism } from '../security/scram.js';

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

/**
 * SASL credentials of the CLI: the user from --user, MEMORYSTREAMER_CLI_USER or the profile's
 * `user`; the mechanism from --sasl-mechanism or the profile's `sasl_mechanism` (default
 * SCRAM-SHA-256); the password from --password-stdin, else MEMORYSTREAMER_PASSWORD. Undefined when
 * no user is named.
 */
export async function resolveSasl(options: {
  user?: string | undefined;
  mechanism?: string | undefined;
  profile?: string | undefined;
  env: NodeJS.ProcessEnv;
  password?: (() => Promise<string>) | undefined;
  tokenFile?: string | undefined;
}): Promise<SaslOptions | undefined> {
  // A bearer token or a user: the nearest source that names either wins (flags, environment, profile).
  if (options.tokenFile !== undefined && options.user !== undefined)
    throw errorOf('INVALID_CONFIG', '--token-file and --user are two ways to authenticate: give one');
  if (options.tokenFile !== undefined) return tokenFromFile(options.tokenFile);
  const envToken = options.env.MEMORYSTREAMER_TOKEN;
  if (options.user === undefined && envToken !== undefined && envToken !== '') {
    if (options.env.MEMORYSTREAMER_CLI_USER !== undefined)
      throw errorOf(
        'INVALID_CONFIG',
        'MEMORYSTREAMER_TOKEN and MEMORYSTREAMER_CLI_USER are both set: unset one',
      );
    return { mechanism: 'token', token: envToken.trim() };
  }
  let user = options.user ?? options.env.MEMORYSTREAMER_CLI_USER;
  let mechanism = options.mechanism;
  let profileTokenFile: string | undefined;
  if (user === undefined || mechanism === undefined) {
    const path = profilesPath(options.env);
    const parsed = await readProfiles(path, options.profile !== undefined);
    const profiles = (parsed?.profiles ?? {}) as Record<
      string,
      { user?: unknown; sasl_mechanism?: unknown; token_file?: unknown }
    >;
    const name = options.profile ?? 'default';
    const profile = profiles[name];
    if (typeof profile?.user === 'string') user ??= profile.user;
    if (typeof profile?.sasl_mechanism === 'string') mechanism ??= profile.sasl_mechanism;
    if (profile?.token_file !== undefined) {
      if (typeof profile.token_file !== 'string' || profile.token_file === '')
        throw errorOf('INVALID_CONFIG', `${path}: profiles.${name}.token_file must be the path of a file`);
      profileTokenFile = resolve(dirname(path), profile.token_file);
    }
  }
  if (user === undefined && profileTokenFile !== undefined && options.password === undefined)
    return tokenFromFile(profileTokenFile);
  if (user === undefined) {
    if (options.password !== undefined)
      throw errorOf('INVALID_CONFIG', '--password-stdin needs --user (or a profile with user = "...")');
    return undefined;
  }
  mechanism ??= 'SCRAM-SHA-256';
  if (!isScramMechanism(mechanism))
    throw errorOf(
      'INVALID_CONFIG',
      `SASL mechanism ${JSON.stringify(mechanism)}: SCRAM-SHA-256 or SCRAM-SHA-512 (a bearer token: --token-file)`,
    );
  const password =
    options.password !== undefined ? await options.password() : options.env.MEMORYSTREAMER_PASSWORD;
  if (password === undefined || password === '')
    throw errorOf(
      'INVALID_CONFIG',
      `user ${user} needs a password: --password-stdin, or the environment variable MEMORYSTREAMER_PASSWORD`,
    );
  return { mechanism, username: user, password };
}

/**
 * A bearer token read from a file on every connection (a renewed file is followed); read once now
 * so that a missing or empty file is said before connecting.
 */
async function tokenFromFile(path: string): Promise<SaslOptions> {
  const read = async () => {
    let token: string;
    try {
      token = (await readFile(path, 'utf8')).trim();
    } catch (error) {
      throw errorOf('INVALID_CONFIG', `cannot read the token file ${path}: ${(error as Error).message}`);
    }
    if (token === '') throw errorOf('INVALID_CONFIG', `the token file ${path} is empty`);
    return token;
  };
  await read();
  return { mechanism: 'token', token: read };
}
