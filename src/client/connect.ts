// `connect({ brokers })`: a Client over TCP. Accepts `host:port` strings, a comma-separated list,
// or `memorystreamer://host:port` URLs; connects eagerly so a wrong address fails here. In a
// cluster the client routes each request to the broker that serves it (cluster-transport.ts).

import { Client, type ClientOptions } from './client.js';
import { ClusterTransport } from './cluster-transport.js';
import { checkSaslOptions, type SaslOptions } from './sasl.js';
import { type ClientTlsOptions, parseBrokerAddress } from './tcp-transport.js';

export type { SaslOptions } from './sasl.js';
export type { ClientTlsOptions } from './tcp-transport.js';

export interface ConnectOptions extends ClientOptions {
  brokers: string | readonly string[];
  clientId?: string;
  connectTimeoutMs?: number;
  /** TLS to brokers whose listener has a certificate: `true` checks it against the system CAs. */
  tls?: ClientTlsOptions | true;
  /** SCRAM credentials: every connection to every broker authenticates with them first. */
  sasl?: SaslOptions;
}

export async function connect(options: ConnectOptions): Promise<Client> {
  if (options.sasl !== undefined) checkSaslOptions(options.sasl);
  const list = typeof options.brokers === 'string' ? options.brokers.split(',') : options.brokers;
  const transport = await ClusterTransport.connect({
    brokers: list.filter((b) => b.trim() !== '').map(parseBrokerAddress),
    ...(options.clientId !== undefined ? { clientId: options.clientId } : {}),
    ...(options.connectTimeoutMs !== undefined ? { connectTimeoutMs: options.connectTimeoutMs } : {}),
    ...(options.tls !== undefined ? { tls: options.tls === true ? {} : options.tls } : {}),
    ...(options.sasl !== undefined ? { sasl: options.sasl } : {}),
  });
  return new Client(transport, options);
}
