// SCRAM credentials of users: derived from a password with a random salt (what `user add` and
// `user passwd` store, offline or sent over the wire), checked when they arrive over the wire, and
// the decoy salt shown for a user that does not exist. Knows nothing of files or sockets.

import { createHmac, randomBytes } from 'node:crypto';
import { errorOf } from '../protocol/error-codes.js';
import {
  MAX_ITERATIONS,
  MAX_USERNAME_LENGTH,
  MIN_ITERATIONS,
  SCRAM_MECHANISMS,
  type ScramCredential,
  type ScramMechanism,
  saltedPassword,
  scramKeys,
} from './scram.js';

/** Default iterations of new credentials (Kafka's default). */
export const DEFAULT_ITERATIONS = 4096;
const SALT_BYTES = 16;

/** Characters a user name may hold: letters, digits and `._@-` (it is also part of a principal). */
const USERNAME_PATTERN = /^[A-Za-z0-9._@-]+$/;

export function checkUsername(name: string): void {
  if (name.length === 0 || name.length > MAX_USERNAME_LENGTH || !USERNAME_PATTERN.test(name))
    throw errorOf(
      'INVALID_CREDENTIAL',
      `user name ${JSON.stringify(name.slice(0, 300))}: 1..${MAX_USERNAME_LENGTH} letters, digits, ".", "_", "@" or "-"`,
    );
}

export function checkIterations(iterations: number): void {
  if (!Number.isInteger(iterations) || iterations < MIN_ITERATIONS || iterations > MAX_ITERATIONS)
    throw errorOf(
      'INVALID_CREDENTIAL',
      `${iterations} iterations: SCRAM needs ${MIN_ITERATIONS}..${MAX_ITERATIONS}`,
    );
}

/** The credential of `password` for one mechanism, with a new random salt. */
export function deriveCredential(
  mechanism: ScramMechanism,
  password: string,
  iterations: number = DEFAULT_ITERATIONS,
): ScramCredential {
  if (password.length === 0) throw errorOf('INVALID_CREDENTIAL', 'the password is empty');
  checkIterations(iterations);
  const suite = SCRAM_MECHANISMS[mechanism];
  const salt = randomBytes(SALT_BYTES);
  const { storedKey, serverKey } = scramKeys(suite, saltedPassword(suite, password, salt, iterations));
  return { salt, iterations, storedKey, serverKey };
}

/** A credential received over the wire: sizes and iterations checked before it is stored. */
export function checkCredential(mechanism: ScramMechanism, credential: ScramCredential): void {
  checkIterations(credential.iterations);
  const keyBytes = SCRAM_MECHANISMS[mechanism].keyBytes;
  if (credential.salt.length < 8 || credential.salt.length > 64)
    throw errorOf('INVALID_CREDENTIAL', `${mechanism}: a salt of ${credential.salt.length} bytes (8..64)`);
  if (credential.storedKey.length !== keyBytes || credential.serverKey.length !== keyBytes)
    throw errorOf('INVALID_CREDENTIAL', `${mechanism}: stored and server keys must be ${keyBytes} bytes`);
}

/**
 * The salt shown for a user name without a credential: an HMAC of the name under a secret kept
 * with the users, so it is the same on every attempt and looks like any other salt.
 */
export function decoySalt(secret: Buffer, mechanism: ScramMechanism, username: string): Buffer {
  return createHmac('sha256', secret).update(`${mechanism}\0${username}`).digest().subarray(0, SALT_BYTES);
}
