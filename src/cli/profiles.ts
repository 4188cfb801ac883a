// Connection profiles for the CLI: a TOML file (MEMORYSTREAMER_CLI_CONFIG, or
// ~/.config/memorystreamer/cli.toml) with named broker lists, so scripts can say `--profile prod`.
//
//   [profiles.default]
//   brokers = "127.0.0.1:7400"
//   [profiles.prod]
//   brokers = "10.0.0.5:7400,10.0.0.6:7400"
//
// Precedence: --broker, then MEMORYSTREAMER_BROKERS, then the profile (--profile, else `default`
// when the file has one), then 127.0.0.1:7400.

import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
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

export async function resolveBrokers(options: {
  broker?: string | undefined;
  profile?: string | undefined;
  env: NodeJS.ProcessEnv;
}): Promise<string> {
  if (options.broker !== undefined) return options.broker;
  if (options.env.MEMORYSTREAMER_BROKERS !== undefined && options.profile === undefined)
    return options.env.MEMORYSTREAMER_BROKERS;
  const path = profilesPath(options.env);
  const parsed = await readProfiles(path, options.profile !== undefined);
  const name = options.profile ?? 'default';
  const profiles = (parsed?.profiles ?? {}) as Record<string, { brokers?: unknown }>;
  const profile = profiles[name];
  if (profile === undefined) {
    if (options.profile !== undefined) {
      throw errorOf(
        'INVALID_CONFIG',
        `profile ${JSON.stringify(name)} is not in ${path} (profiles: ${Object.keys(profiles).join(', ') || 'none'})`,
      );
    }
    return DEFAULT_BROKER;
  }
  if (typeof profile.brokers !== 'string' || profile.brokers.trim() === '') {
    throw errorOf(
      'INVALID_CONFIG',
      `${path}: profiles.${name}.brokers must be a string like "host:port,host:port"`,
    );
  }
  return profile.brokers;
}
