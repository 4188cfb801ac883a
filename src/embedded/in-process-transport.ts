// A transport that calls the broker core in the same process: no sockets, no encoding. Requests
// are the same typed objects the wire codecs produce; record batches are passed by reference.

import type { BrokerCore } from '../broker/broker-core.js';
import type { PushSubscription } from '../broker/partitions/partition.js';
import type {
  ClientCommand,
  PushHandlers,
  RemoteSubscription,
  RequestOptions,
  Transport,
} from '../client/transport.js';
import { withTimeout } from '../client/with-timeout.js';
import type { SubscribeRequest } from '../protocol/commands/data-types.js';
import type { RequestOf, ResponseOf } from '../protocol/commands/registry.js';
import { errorOf } from '../protocol/error-codes.js';

export class InProcessTransport implements Transport {
  private readonly subscriptions = new Set<PushSubscription>();
  private closed = false;

  constructor(private readonly core: BrokerCore) {}

  // Not an async function: the core's own promise is the one the caller gets (bounded in time),
  // without a wrapping promise and its extra microtask per request.
  request<K extends ClientCommand>(
    name: K,
    request: RequestOf<K>,
    options: RequestOptions,
  ): Promise<ResponseOf<K>> {
    if (this.closed) return Promise.reject(errorOf('CONNECTION_CLOSED', 'client is closed'));
    if (name === 'ping') return Promise.resolve({} as ResponseOf<K>);
    const call = this.core.execute(name as Exclude<ClientCommand, 'ping'>, request as never) as Promise<
      ResponseOf<K>
    >;
    return withTimeout(call, options.timeoutMs, name);
  }

  async subscribe(request: SubscribeRequest, handlers: PushHandlers): Promise<RemoteSubscription> {
    if (this.closed) throw errorOf('CONNECTION_CLOSED', 'client is closed');
    const { subscription, offset } = this.core.subscribe(request, handlers.onBatches, handlers.onError);
    this.subscriptions.add(subscription);
    return {
      offset,
      grant: (bytes) => subscription.grant(bytes),
      close: async () => {
        subscription.close();
        this.subscriptions.delete(subscription);
      },
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const subscription of this.subscriptions) subscription.close();
    this.subscriptions.clear();
  }
}
