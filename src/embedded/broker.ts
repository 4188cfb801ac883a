// `Broker.start({ dataDir })`: the whole broker inside the calling process. `connect()` returns the
// same Client API as the network client, over an in-process transport; with `port` set the same
// broker also listens on TCP.

import { AdminServer } from '../broker/admin/admin-server.js';
import { BrokerCore, type BrokerCoreOptions } from '../broker/broker-core.js';
import { NetworkServer, type ServerLimits } from '../broker/server/network-server.js';
import { Client, type ClientOptions } from '../client/client.js';
import type { BrokerLogger } from '../metrics/logger.js';
import { type BrokerTracing, type OtlpTracingOptions, otlpTracing } from '../metrics/tracing.js';
import { InProcessTransport } from './in-process-transport.js';

export interface BrokerOptions extends BrokerCoreOptions {
  /** Also listen on TCP at this port (0 picks a free one). */
  port?: number;
  host?: string;
  limits?: Partial<ServerLimits>;
  /** Where connection events and unexpected errors go (silent by default). */
  logger?: BrokerLogger;
  /** Serve /metrics, /healthz, /readyz and the read-only JSON API over HTTP here. */
  admin?: { host?: string; port: number };
  /** Record request counters and latency histograms (default true). */
  metrics?: boolean;
  /**
   * Export spans over OTLP/HTTP (`tracing.otlp_endpoint`). To use a tracer of your own instead,
   * pass `tracer` (from BrokerCoreOptions).
   */
  tracing?: OtlpTracingOptions;
}

export class Broker {
  readonly core: BrokerCore;
  readonly server: NetworkServer | null;
  readonly admin: AdminServer | null;
  private stopped = false;
  private readonly tracing: BrokerTracing | null;

  private constructor(
    core: BrokerCore,
    server: NetworkServer | null,
    admin: AdminServer | null,
    tracing: BrokerTracing | null,
  ) {
    this.core = core;
    this.server = server;
    this.admin = admin;
    this.tracing = tracing;
  }

  static async start(options: BrokerOptions): Promise<Broker> {
    const tracing = options.tracing !== undefined ? otlpTracing(options.tracing) : null;
    const core = await BrokerCore.start(tracing !== null ? { ...options, tracer: tracing.tracer } : options);
    core.metrics.enabled = options.metrics ?? true;
    let server: NetworkServer | null = null;
    let admin: AdminServer | null = null;
    let broker: Broker | null = null;
    try {
      if (options.port !== undefined) {
        const network = await NetworkServer.start({
          core,
          host: options.host ?? '127.0.0.1',
          port: options.port,
          limits: options.limits ?? {},
          ...(options.logger ? { logger: options.logger } : {}),
        });
        server = network;
        core.connectionStats = () => ({ connections: network.connectionCount, heldBytes: network.heldBytes });
      }
      if (options.admin !== undefined) {
        admin = await AdminServer.start({
          core,
          metrics: core.metrics,
          host: options.admin.host ?? '127.0.0.1',
          port: options.admin.port,
          ready: () => broker !== null && !broker.stopped,
        });
      }
    } catch (error) {
      await server?.shutdown({ deadlineMs: 0 });
      await core.close();
      await tracing?.shutdown();
      throw error;
    }
    broker = new Broker(core, server, admin, tracing);
    return broker;
  }

  /** host:port of the TCP listener, or null when the broker is in-process only. */
  get address(): { host: string; port: number } | null {
    return this.server?.address ?? null;
  }

  /** A client over the in-process transport. */
  connect(options: ClientOptions = {}): Client {
    return new Client(new InProcessTransport(this.core), options);
  }

  /** Stops accepting, lets in-flight requests finish (up to the deadline), closes every log. */
  async stop(options: { deadlineMs?: number } = {}): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.server !== null) await this.server.shutdown({ deadlineMs: options.deadlineMs ?? 5000 });
    if (this.admin !== null) await this.admin.close();
    await this.core.close();
    // Last, so the spans of the final requests are exported too. An unreachable collector must
    // not make stopping fail or hang: the spans are given up after a short deadline.
    if (this.tracing !== null) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.tracing.shutdown().catch(() => undefined),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, 2000);
          timer.unref();
        }),
      ]);
      clearTimeout(timer);
    }
  }
}
