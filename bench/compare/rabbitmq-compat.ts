// rabbitmq-stream-js-client 1.0 opens every connection with ExchangeCommandVersions, a command
// RabbitMQ added in 3.11; Debian 12 ships 3.10, which answers it by closing the connection
// ("unknown command"). Against a server older than 3.11 we skip that one handshake step: the
// client then uses the version-1 commands, which are all 3.10 speaks anyway (and all we use).
import { Connection } from 'rabbitmq-stream-js-client/dist/connection.js';

interface Handshake {
  peerProperties?: Record<string, string>;
  exchangeCommandVersions(): Promise<unknown>;
}

function before311(version: string): boolean {
  const [major = 0, minor = 0] = version.split('.').map((part) => Number.parseInt(part, 10));
  return major < 3 || (major === 3 && minor < 11);
}

let installed = false;
/** Returns whether a connection to a server of `version` needs (and now has) the shim. */
export function allowPre311Servers(version: string): boolean {
  if (!before311(version)) return false;
  if (installed) return true;
  installed = true;
  const prototype = Connection.prototype as unknown as Handshake;
  const original = prototype.exchangeCommandVersions;
  prototype.exchangeCommandVersions = function (this: Handshake) {
    if (before311(this.peerProperties?.version ?? '')) return Promise.resolve(null);
    return original.call(this);
  };
  return true;
}
