// The client's side of authentication: a SCRAM exchange (AUTHENTICATE_START, AUTHENTICATE_FINISH)
// on a new connection, right after the handshake and before anything else, on every connection and
// reconnection. The broker's signature is checked too: a broker that does not know the credential
// is refused. The exchange itself is sans-IO (src/security/scram.ts); `send` moves the requests.

import { isMemoryStreamerError } from '../common/errors.js';
import { authenticateFinishCommand, authenticateStartCommand } from '../protocol/commands/auth-commands.js';
import type { CommandCodec } from '../protocol/commands/command.js';
import { errorOf } from '../protocol/error-codes.js';
import { isScramMechanism, ScramClient, type ScramMechanism } from '../security/scram.js';

export interface SaslOptions {
  mechanism: ScramMechanism;
  username: string;
  password: string;
}

export type SendOnLink = <Request, Response>(
  codec: CommandCodec<Request, Response>,
  request: Request,
) => Promise<Response>;

/** Checks the options before any connection (INVALID_CONFIG naming what is wrong). */
export function checkSaslOptions(sasl: SaslOptions): void {
  if (!isScramMechanism(sasl.mechanism))
    throw errorOf(
      'INVALID_CONFIG',
      `sasl.mechanism ${JSON.stringify(sasl.mechanism)}: SCRAM-SHA-256 or SCRAM-SHA-512`,
    );
  if (sasl.username === '' || sasl.password === '')
    throw errorOf('INVALID_CONFIG', 'sasl needs a username and a password');
}

/** Authenticates a connection; resolves with the principal the broker knows it as (`User:alice`). */
export async function authenticateOnLink(sasl: SaslOptions, send: SendOnLink): Promise<string> {
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

const AUTH_ERRORS = new Set([
  'AUTHENTICATION_FAILED',
  'UNSUPPORTED_SASL_MECHANISM',
  'TOO_MANY_AUTHENTICATION_FAILURES',
  'INVALID_CREDENTIAL',
]);

export function isAuthenticationError(error: unknown): boolean {
  return isMemoryStreamerError(error) && AUTH_ERRORS.has(error.codeName);
}
