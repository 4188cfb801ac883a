// The client's side of authentication: a SCRAM exchange (AUTHENTICATE_START, AUTHENTICATE_FINISH)
// on a new connection, right after the handshake and before anything else, on every connection and
// reconnection. The broker's signature is checked too: a broker that does not know the credential
// is refused. The exchange itself is sans-IO (src/security/scram.ts); `send` moves the requests.
// A bearer token (`mechanism: 'token'`) takes one AUTHENTICATE_START; a token given as a function is
// asked for on every connection, so a service hands out a fresh one when its last expired.

import { isMemoryStreamerError } from '../common/errors.js';
import { authenticateFinishCommand, authenticateStartCommand } from '../protocol/commands/auth-commands.js';
import type { CommandCodec } from '../protocol/commands/command.js';
import { errorOf } from '../protocol/error-codes.js';
import { isScramMechanism, ScramClient, type ScramMechanism } from '../security/scram.js';

export interface ScramSaslOptions {
  mechanism: ScramMechanism;
  username: string;
  password: string;
}

export interface TokenSaslOptions {
  mechanism: 'token';
  /** A signed JWT, or a function returning one (called on every connection and reconnection). */
  token: string | (() => string | Promise<string>);
}

export type SaslOptions = ScramSaslOptions | TokenSaslOptions;

export type SendOnLink = <Request, Response>(
  codec: CommandCodec<Request, Response>,
  request: Request,
) => Promise<Response>;

/** Checks the options before any connection (INVALID_CONFIG naming what is wrong). */
export function checkSaslOptions(sasl: SaslOptions): void {
  if (sasl.mechanism === 'token') {
    if (typeof sasl.token !== 'function' && (typeof sasl.token !== 'string' || sasl.token === ''))
      throw errorOf('INVALID_CONFIG', 'sasl.token must be a JWT or a function returning one');
    return;
  }
  if (!isScramMechanism(sasl.mechanism))
    throw errorOf(
      'INVALID_CONFIG',
      `sasl.mechanism ${JSON.stringify(sasl.mechanism)}: SCRAM-SHA-256, SCRAM-SHA-512 or token`,
    );
  if (sasl.username === '' || sasl.password === '')
    throw errorOf('INVALID_CONFIG', 'sasl needs a username and a password');
}

/** Authenticates a connection; resolves with the principal the broker knows it as (`User:alice`). */
export async function authenticateOnLink(sasl: SaslOptions, send: SendOnLink): Promise<string> {
  if (sasl.mechanism === 'token') return authenticateWithToken(sasl, send);
  const client = new ScramClient(sasl);
  const started = await send(authenticateStartCommand, {
    mechanism: sasl.mechanism,
    message: Buffer.from(client.first(), 'utf8'),
  });
  const finished = await send(authenticateFinishCommand, {
    message: Buffer.from(client.final(started.message.toString('utf8')), 'utf8'),
  });
  client.verify(finished.message.toString('utf8'));
  return finished.principal;
}

async function authenticateWithToken(sasl: TokenSaslOptions, send: SendOnLink): Promise<string> {
  let token: string;
  try {
    token = typeof sasl.token === 'function' ? await sasl.token() : sasl.token;
  } catch (error) {
    throw errorOf('INVALID_CREDENTIAL', `the sasl.token function failed: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (typeof token !== 'string' || token === '')
    throw errorOf('INVALID_CREDENTIAL', 'the sasl.token function returned no token');
  const answer = await send(authenticateStartCommand, {
    mechanism: 'token',
    message: Buffer.from(token.trim(), 'utf8'),
  });
  return answer.message.toString('utf8');
}

const AUTH_ERRORS = new Set([
  'AUTHENTICATION_FAILED',
  'UNSUPPORTED_SASL_MECHANISM',
  'TOO_MANY_AUTHENTICATION_FAILURES',
  'INVALID_CREDENTIAL',
]);

export function isAuthenticationError(error: unknown): boolean {
  return isMemoryStreamerError(error) && AUTH_ERRORS.has(error.codeName);
}
