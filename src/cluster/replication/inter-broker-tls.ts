// The TLS of broker-to-broker connections (replica fetches, leader requests): a broker whose
// listener speaks TLS reaches the others over TLS too, as they are configured alike. It checks
// their certificates against its own CA file (or the system CAs without one) and presents its own
// certificate, which brokers that require client certificates check against theirs. Read at each
// new connection, so certificates reloaded on SIGHUP are the ones used from then on.

import type { NodePartContext } from '../../broker/broker-node.js';
import type { ClientTlsOptions } from '../../client/tcp-transport.js';

export function interBrokerTls(node: NodePartContext): () => ClientTlsOptions | undefined {
  return () => {
    const tls = node.tls();
    if (tls === null) return undefined;
    return { ...(tls.ca !== undefined ? { ca: tls.ca } : {}), cert: tls.cert, key: tls.key };
  };
}
