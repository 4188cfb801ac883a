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
import { CorrelationTable } from '../common/correlation-table.js';
import type { SubscribeRequest } from '../protocol/commands/data-types.js';
import type { RequestOf, ResponseOf } from '../protocol/commands/registry.js';
import { errorOf } from '../protocol/error-codes.js';

/** How often pending requests' deadlines are checked: the granularity of request timeouts. */
const DEADLINE_CHECK_MS = 50;

/** A request the core has not answered yet, and when it times out. */
interface PendingRequest {
  readonly deadline: number;
  readonly name: string;
  readonly timeoutMs: number;
  readonly reject: (error: Error) => void;
}

export class InProcessTransport implements Transport {
  private readonly subscriptions = new Set<PushSubscription>();
  /**
   * Requests the core has not answered, by a number of their own: a Set that each request entered
   * and left made old-generation garbage per request (src/common/correlation-table.ts).
   */
  private readonly pending = new CorrelationTable<PendingRequest>();
  private nextRequestId = 0;
  /**
   * One timer checks every pending request's deadline (a timer per request cost more than the
   * request). It runs while requests are pending and keeps the process alive meanwhile, as a
   * request's own timer would; a sweep that finds none pending stops it.
   */
  private deadlines: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(private readonly core: BrokerCore) {}

  // Not an async function: the core's promise is chained once into the one the caller gets.
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
    this.deadlines ??= setInterval(() => this.expire(), DEADLINE_CHECK_MS);
    const id = this.nextRequestId;
    this.nextRequestId = this.nextRequestId >= 0x7fffffff ? 0 : this.nextRequestId + 1;
    return new Promise<ResponseOf<K>>((resolve, reject) => {
      this.pending.set(id, {
        deadline: performance.now() + options.timeoutMs,
        name,
        timeoutMs: options.timeoutMs,
        reject,
      });
      call.then(
        (response) => {
          this.pending.delete(id);
          resolve(response);
        },
        (error: unknown) => {
          this.pending.delete(id);
          reject(error);
        },
      );
    });
  }

  /** Fails, with a retriable REQUEST_TIMEOUT, every request past its deadline. */
  private expire(): void {
    const now = performance.now();
    this.pending.forEach((entry, id) => {
      if (entry.deadline > now) return;
      this.pending.delete(id);
      entry.reject(errorOf('REQUEST_TIMEOUT', `${entry.name} after ${entry.timeoutMs} ms`));
    });
    if (this.pending.size === 0 && this.deadlines !== null) {
      clearInterval(this.deadlines);
      this.deadlines = null;
    }
  }

  /** Whether the deadline timer runs (tests: it stops once nothing is pending). */
  get checkingDeadlines(): boolean {
    return this.deadlines !== null;
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
    if (this.deadlines !== null) clearInterval(this.deadlines);
    this.deadlines = null;
    // Requests still waiting (a long-poll fetch) end now, as on a closed connection.
    this.pending.forEach((entry, id) => {
      this.pending.delete(id);
      entry.reject(errorOf('CONNECTION_CLOSED', 'client is closed'));
    });
    for (const subscription of this.subscriptions) subscription.close();
    this.subscriptions.clear();
  }
}
