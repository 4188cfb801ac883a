// The TCP listener: accepts connections within the total and per-address caps, tracks the global
// memory budget, and shuts down gracefully (stop accepting, GOAWAY, drain in-flight requests up to a
// deadline, close). Knows nothing of topics: requests go to the broker core.

import { createServer, type Server, type Socket } from 'node:net';
import { type BrokerLogger, silentLogger } from '../../metrics/logger.js';
import { encodeErrorPayload } from '../../protocol/commands/control.js';
import { ERROR_TABLE } from '../../protocol/error-codes.js';
import { encodeFrame, FrameFlags } from '../../protocol/frame-header.js';
import type { BrokerCore } from '../broker-core.js';
import { Connection, type ConnectionHost } from './connection.js';
import { DEFAULT_SERVER_LIMITS, type ServerLimits } from './server-limits.js';

export type { ServerLimits } from './server-limits.js';

export interface NetworkServerOptions {
  core: BrokerCore;
  host: string;
  port: number;
  limits?: Partial<ServerLimits>;
  logger?: BrokerLogger;
}

export class NetworkServer implements ConnectionHost {
  readonly core: BrokerCore;
  readonly limits: ServerLimits;
  readonly serverId: string;
  readonly logger: BrokerLogger;
  private readonly server: Server;
  private readonly connections = new Set<Connection>();
  private readonly perAddress = new Map<string, number>();
  private globalBytes = 0;
  private shuttingDown = false;

  private constructor(options: NetworkServerOptions) {
    this.core = options.core;
    this.serverId = options.core.id;
    this.limits = { ...DEFAULT_SERVER_LIMITS, ...options.limits };
    this.logger = options.logger ?? silentLogger;
    this.server = createServer({ noDelay: true }, (socket) => this.accept(socket));
  }

  static async start(options: NetworkServerOptions): Promise<NetworkServer> {
    const server = new NetworkServer(options);
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.server.listen(options.port, options.host, () => {
        server.server.off('error', reject);
        resolve();
      });
    });
    return server;
  }

  get address(): { host: string; port: number } {
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('server is not listening');
    return { host: address.address, port: address.port };
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  private accept(socket: Socket): void {
    const address = socket.remoteAddress ?? 'unknown';
    const fromAddress = this.perAddress.get(address) ?? 0;
    if (
      this.shuttingDown ||
      this.connections.size >= this.limits.maxConnections ||
      fromAddress >= this.limits.maxConnectionsPerAddress
    ) {
      const entry = this.shuttingDown ? ERROR_TABLE.SHUTTING_DOWN : ERROR_TABLE.TOO_MANY_CONNECTIONS;
      const detail = this.shuttingDown
        ? 'broker is shutting down'
        : `limit ${this.limits.maxConnections} in total, ${this.limits.maxConnectionsPerAddress} per address`;
      this.logger.warn(
        { remote: `${address}:${socket.remotePort ?? 0}`, reason: detail },
        'connection refused',
      );
      socket.on('error', () => socket.destroy());
      socket.end(
        encodeFrame(
          { opcode: 0, flags: FrameFlags.RESPONSE | FrameFlags.ERROR, errorCode: entry.code },
          encodeErrorPayload(detail),
        ),
      );
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    this.perAddress.set(address, fromAddress + 1);
    this.connections.add(new Connection(socket, this));
  }

  addGlobalBytes(delta: number): void {
    this.globalBytes += delta;
  }

  globalBudgetExceeded(): boolean {
    return this.globalBytes > this.limits.globalBudgetBytes;
  }

  get heldBytes(): number {
    return this.globalBytes;
  }

  onClose(connection: Connection): void {
    if (!this.connections.delete(connection)) return;
    const count = (this.perAddress.get(connection.remoteAddress) ?? 1) - 1;
    if (count <= 0) this.perAddress.delete(connection.remoteAddress);
    else this.perAddress.set(connection.remoteAddress, count);
  }

  /** Stops accepting, sends GOAWAY, waits for in-flight requests up to the deadline, closes all. */
  async shutdown(options: { deadlineMs: number }): Promise<void> {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const drained = Promise.all([...this.connections].map((c) => c.goaway(options.deadlineMs)));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      drained,
      new Promise((resolve) => (timer = setTimeout(resolve, options.deadlineMs))),
    ]);
    clearTimeout(timer);
    for (const connection of [...this.connections]) connection.close();
    await closed;
  }
}
