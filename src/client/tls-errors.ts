// Turns what node:tls reports when a TLS connection cannot be set up into the table's codes, so a
// client learns which side is misconfigured instead of a bare "connection closed":
//
//   TLS_NOT_OFFERED (807)           the listener answered in plain text (it has no certificate);
//   TLS_CERTIFICATE_REJECTED (808)  this side does not trust the broker's certificate (unknown CA,
//                                   expired, not yet valid, wrong name);
//   TLS_HANDSHAKE_FAILED (809)      the broker refused the handshake (no client certificate, or one
//                                   its CA did not sign; no common protocol version).
//
// TLS_REQUIRED (806), a plain client at a TLS listener, arrives as an error frame from the broker.

import { MemoryStreamerError } from '../common/errors.js';
import { errorOf } from '../protocol/error-codes.js';

/** OpenSSL's reading of a plain-text answer to a ClientHello. */
const PLAIN_ANSWER = new Set([
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'ERR_SSL_PACKET_LENGTH_TOO_LONG',
  'ERR_SSL_HTTP_REQUEST',
  'ERR_SSL_RECORD_LENGTH_MISMATCH',
]);

/** Certificate checks of this side (node's verify error codes). */
const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

export const TLS_ERROR_NAMES: ReadonlySet<string> = new Set([
  'TLS_REQUIRED',
  'TLS_NOT_OFFERED',
  'TLS_CERTIFICATE_REJECTED',
  'TLS_HANDSHAKE_FAILED',
]);

/** The TLS error of the table for a node:tls failure, or null when the failure is not about TLS. */
export function tlsFailure(error: unknown, where: string): MemoryStreamerError | null {
  // Already one of ours (an error frame, or mapped once), here or in the cause chain.
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++)
    if (e instanceof MemoryStreamerError && TLS_ERROR_NAMES.has(e.codeName)) return e;
  const code = (error as NodeJS.ErrnoException | null)?.code;
  if (typeof code !== 'string') return null;
  const reason = (error as Error).message.split('\n')[0];
  if (PLAIN_ANSWER.has(code))
    return errorOf('TLS_NOT_OFFERED', `${where} answered in plain text (${code})`, { cause: error });
  if (UNTRUSTED.has(code))
    return errorOf('TLS_CERTIFICATE_REJECTED', `${where}: ${reason} (${code})`, { cause: error });
  // Alerts the broker sent, and other handshake failures OpenSSL reports.
  if (code.startsWith('ERR_SSL_') || code === 'ERR_TLS_HANDSHAKE_TIMEOUT')
    return errorOf('TLS_HANDSHAKE_FAILED', `${where}: ${reason} (${code})`, { cause: error });
  return null;
}

/** The broker closed a TLS connection after the TLS handshake and before answering the protocol's. */
export function closedAfterTls(where: string): MemoryStreamerError {
  return errorOf(
    'TLS_HANDSHAKE_FAILED',
    `${where} closed the connection after the TLS handshake, before answering: a broker that requires client certificates did not accept this one (tls.cert, tls.key signed by its tls.ca_file)`,
  );
}
