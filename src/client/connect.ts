// `connect({ brokers })`: a Client over TCP. Accepts `host:port` strings, a comma-separated list,
// or `memorystreamer://host:port` URLs (`memorystreamer+tls://host:port`: over TLS); connects eagerly so a wrong address fails here. In a
// cluster the client routes each request to the broker that serves it (cluster-transport.ts).

import { errorOf } from '../protocol/error-codes.js';
import { Client, type ClientOptions } from './client.js';
import { ClusterTransport } from './cluster-transport.js';
import { checkSaslOptions, type SaslOptions } from './sasl.js';
import { type ClientTlsOptions, parseBrokerAddress, TLS_URL_SCHEME } from './tcp-transport.js';

export type { SaslOptions, ScramSaslOptions, TokenSaslOptions } from './sasl.js';
export type { ClientTlsOptions } from './tcp-transport.js';

export interface ConnectOptions extends ClientOptions {
  brokers: string | readonly string[];
  clientId?: string;
  connectTimeoutMs?: number;
  /**
   * TLS to brokers whose listener has a certificate: `true` (or `memorystreamer+tls://` addresses)
   * checks it against the system CAs; `{ ca }` against these; `{ cert, key }` for mutual TLS.
   */
  tls?: ClientTlsOptions | true;
  /**
   * Credentials every connection to every broker authenticates with first: SCRAM (`username`,
   * `password`) or a bearer token (`{ mechanism: 'token', token }`, a JWT or a function returning
   * one, called on every connection so an expired token is replaced).
   */
  sasl?: SaslOptions;
}

/**
 * The TLS settings of a connection: the `tls` option, or the system CAs when an address is a
 * `memorystreamer+tls://` URL. One connection speaks one way to every broker of a cluster, so a
 * list that mixes that form with others is refused.
 */
export function tlsOfConnection(
  brokers: readonly string[],
  tls: ClientTlsOptions | true | undefined,
): ClientTlsOptions | undefined {
  const byUrl = brokers.filter((b) => b.trim().startsWith(TLS_URL_SCHEME)).length;
  if (byUrl > 0 && byUrl < brokers.length)
    throw errorOf(
      'INVALID_CONFIG',
      `brokers ${JSON.stringify(brokers.join(','))}: either every address is ${TLS_URL_SCHEME}host:port or none is`,
    );
  if (tls !== undefined) return tls === true ? {} : tls;
  return byUrl > 0 ? {} : undefined;
}

export async function connect(options: ConnectOptions): Promise<Client> {
  if (options.sasl !== undefined) checkSaslOptions(options.sasl);
  const list = (typeof options.brokers === 'string' ? options.brokers.split(',') : options.brokers).filter(
    (b) => b.trim() !== '',
  );
  const tls = tlsOfConnection(list, options.tls);
  const transport = await ClusterTransport.connect({
    brokers: list.map(parseBrokerAddress),
    ...(options.clientId !== undefined ? { clientId: options.clientId } : {}),
    ...(options.connectTimeoutMs !== undefined ? { connectTimeoutMs: options.connectTimeoutMs } : {}),
    ...(tls !== undefined ? { tls } : {}),
    ...(options.sasl !== undefined ? { sasl: options.sasl } : {}),
  });
  return new Client(transport, options);
}
