// `connect({ brokers })`: a Client over TCP. Accepts `host:port` strings, a comma-separated list,
// or `memorystreamer://host:port` URLs; connects eagerly so a wrong address fails here.

import { Client, type ClientOptions } from './client.js';
import { type ClientTlsOptions, parseBrokerAddress, TcpTransport } from './tcp-transport.js';

export type { ClientTlsOptions } from './tcp-transport.js';

export interface ConnectOptions extends ClientOptions {
  brokers: string | readonly string[];
  clientId?: string;
  connectTimeoutMs?: number;
  /** TLS to brokers whose listener has a certificate: `true` checks it against the system CAs. */
  tls?: ClientTlsOptions | true;
}

export async function connect(options: ConnectOptions): Promise<Client> {
  const list = typeof options.brokers === 'string' ? options.brokers.split(',') : options.brokers;
  const transport = new TcpTransport({
    brokers: list.filter((b) => b.trim() !== '').map(parseBrokerAddress),
    ...(options.clientId !== undefined ? { clientId: options.clientId } : {}),
    ...(options.connectTimeoutMs !== undefined ? { connectTimeoutMs: options.connectTimeoutMs } : {}),
    ...(options.tls !== undefined ? { tls: options.tls === true ? {} : options.tls } : {}),
  });
  try {
    await transport.connect();
  } catch (error) {
    await transport.close();
    throw error;
  }
  return new Client(transport, options);
}
