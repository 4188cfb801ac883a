// `Broker.start({ dataDir })`: the whole broker inside the calling process. `connect()` returns the
// same Client API as the network client, over an in-process transport; with `port` set the same
// broker also listens on TCP. The broker itself is a broker node (src/broker/broker-node.ts), the
// same one `memorystreamer serve` runs; this adds the in-process clients.

import type { AdminServer } from '../broker/admin/admin-server.js';
import type { BrokerCore } from '../broker/broker-core.js';
import { BrokerNode, type BrokerNodeOptions } from '../broker/broker-node.js';
import type { FdBudget } from '../broker/fd-budget.js';
import type { NetworkServer } from '../broker/server/network-server.js';
import { Client, type ClientOptions } from '../client/client.js';
import { InProcessTransport } from './in-process-transport.js';

export type BrokerOptions = BrokerNodeOptions;

export class Broker {
  private readonly node: BrokerNode;

  private constructor(node: BrokerNode) {
    this.node = node;
  }

  static async start(options: BrokerOptions): Promise<Broker> {
    return new Broker(await BrokerNode.start(options));
  }

  get core(): BrokerCore {
    return this.node.core;
  }

  /** The TCP listener, or null when the broker is in-process only. */
  get server(): NetworkServer | null {
    return this.node.server;
  }

  /** The admin HTTP endpoint, or null without `admin`. */
  get admin(): AdminServer | null {
    return this.node.admin;
  }

  /** How the open-files limit is split (null where it cannot be read); see docs/operations.md. */
  get fileBudget(): FdBudget | null {
    return this.node.fileBudget;
  }

  /** host:port of the TCP listener, or null when the broker is in-process only. */
  get address(): { host: string; port: number } | null {
    return this.node.address;
  }

  /** A client over the in-process transport. */
  connect(options: ClientOptions = {}): Client {
    return new Client(new InProcessTransport(this.node.core), options);
  }

  /** Stops accepting, lets in-flight requests finish (up to the deadline), closes every log. */
  async stop(options: { deadlineMs?: number } = {}): Promise<void> {
    await this.node.stop(options);
  }
}
