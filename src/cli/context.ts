// What every CLI command shares: output mode (human or --json), where output goes, and how to
// reach the broker (flag, MEMORYSTREAMER_BROKERS, or the default 127.0.0.1:7400).

import { readFile } from 'node:fs/promises';
import type { Client } from '../client/client.js';
import {
  type ClientTlsOptions,
  type ConnectOptions,
  connect,
  type SaslOptions,
  tlsOfConnection,
} from '../client/connect.js';
import { checkSaslOptions } from '../client/sasl.js';
import { parseBrokerAddress } from '../client/tcp-transport.js';
import { errorOf } from '../protocol/error-codes.js';
import { toJson, UsageFailure } from './output.js';
import { type ProfileTls, resolveConnection, resolveSasl } from './profiles.js';
import type { ProgressOutput } from './progress.js';

/** The global options, as commander parsed them (a later occurrence wins over an earlier one). */
export interface GlobalOptions {
  broker?: string;
  profile?: string;
  tls?: boolean;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  user?: string;
  passwordStdin?: boolean;
  saslMechanism?: string;
  tokenFile?: string;
}

/** Reads standard input to its end (a password given with --password-stdin: one line, newline dropped). */
export async function readStdinSecret(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

/**
 * The TLS settings of the global flags, files read: undefined for plain TCP. Each flag has an
 * environment variable (MEMORYSTREAMER_CLI_TLS_CA, _CERT, _KEY; MEMORYSTREAMER_CLI_TLS=1) for scripts.
 */
export async function tlsOf(
  globals: GlobalOptions,
  env: NodeJS.ProcessEnv,
  profile: ProfileTls = {},
): Promise<ClientTlsOptions | undefined> {
  const caFile = globals.tlsCa ?? env.MEMORYSTREAMER_CLI_TLS_CA ?? profile.caFile;
  const certFile = globals.tlsCert ?? env.MEMORYSTREAMER_CLI_TLS_CERT ?? profile.certFile;
  const keyFile = globals.tlsKey ?? env.MEMORYSTREAMER_CLI_TLS_KEY ?? profile.keyFile;
  const wanted = globals.tls === true || env.MEMORYSTREAMER_CLI_TLS === '1' || profile.tls === true;
  if (!wanted && caFile === undefined && certFile === undefined && keyFile === undefined) return undefined;
  if ((certFile === undefined) !== (keyFile === undefined))
    throw errorOf(
      'INVALID_CONFIG',
      '--tls-cert and --tls-key go together (a client certificate and its key)',
    );
  const read = async (what: string, file: string) => {
    try {
      return await readFile(file);
    } catch (error) {
      throw errorOf('INVALID_CONFIG', `cannot read the TLS ${what} ${file}: ${(error as Error).message}`);
    }
  };
  return {
    ...(caFile !== undefined ? { ca: await read('CA file', caFile) } : {}),
    ...(certFile !== undefined ? { cert: await read('certificate', certFile) } : {}),
    ...(keyFile !== undefined ? { key: await read('key', keyFile) } : {}),
  };
}

export interface CliContext extends ProgressOutput {
  json: boolean;
  env: NodeJS.ProcessEnv;
  out: (text: string) => void;
  err: (text: string) => void;
  /** Prints a value: JSON in --json mode, else the human text. */
  print(value: unknown, human: string): void;
  connect(): Promise<Client>;
  /** What `connect` connects with (brokers, TLS, SASL credentials), resolved from flags, env and profile. */
  connectOptions(): Promise<ConnectOptions & { brokers: string }>;
}

export function createContext(options: {
  json: boolean;
  /** Read when a command connects, after the whole command line was parsed. */
  globals: () => GlobalOptions;
  env: NodeJS.ProcessEnv;
  out: (text: string) => void;
  err: (text: string) => void;
  terminal: ProgressOutput['terminal'];
}): CliContext {
  return {
    json: options.json,
    env: options.env,
    out: options.out,
    err: options.err,
    terminal: options.terminal,
    print(value, human) {
      options.out(options.json ? toJson(value, 0) : human);
    },
    connect: async () => connect(await connectOptions()),
    connectOptions: () => connectOptions(),
  };
  /** What to connect with; a wrong setting fails here, before any broker is asked (a usage error). */
  async function connectOptions(): Promise<ConnectOptions & { brokers: string }> {
    try {
      const resolved = await resolveConnectOptions();
      const list = resolved.brokers.split(',').filter((b) => b.trim() !== '');
      if (list.length === 0) throw errorOf('INVALID_CONFIG', 'no broker address given (--broker host:port)');
      tlsOfConnection(list, resolved.tls);
      for (const address of list) parseBrokerAddress(address);
      if (resolved.sasl !== undefined) checkSaslOptions(resolved.sasl);
      return resolved;
    } catch (error) {
      throw new UsageFailure(error);
    }
  }
  async function resolveConnectOptions(): Promise<ConnectOptions & { brokers: string }> {
    const globals = options.globals();
    const target = await resolveConnection({
      broker: globals.broker,
      profile: globals.profile,
      env: options.env,
    });
    const tls = await tlsOf(globals, options.env, target.tls);
    const sasl: SaslOptions | undefined = await resolveSasl({
      user: globals.user,
      mechanism: globals.saslMechanism,
      profile: globals.profile,
      env: options.env,
      password: globals.passwordStdin === true ? readStdinSecret : undefined,
      tokenFile: globals.tokenFile,
    });
    return {
      brokers: target.brokers,
      clientId: 'memorystreamer-cli',
      connectTimeoutMs: 5000,
      ...(tls !== undefined ? { tls } : {}),
      ...(sasl !== undefined ? { sasl } : {}),
    };
  }
}
