// The TCP listener: accepts connections within the total and per-address caps, tracks the global
// memory budget (and wakes connections that wait for it, oldest first, when bytes are freed), cuts
// clients that stop reading, and shuts down gracefully (stop accepting, GOAWAY, drain in-flight
// requests up to a deadline, close). Knows nothing of topics: requests go to the broker core.

import { createServer, type Server, type Socket } from 'node:net';
import { type BrokerLogger, silentLogger } from '../../metrics/logger.js';
import { encodeErrorPayload } from '../../protocol/commands/control.js';
import { ERROR_TABLE, errorOf } from '../../protocol/error-codes.js';
import { encodeFrame, FrameFlags } from '../../protocol/frame-header.js';
import type { BrokerAuthorization } from '../../security/authorizer-service.js';
import type { BrokerAuthenticator } from '../../security/broker-authenticator.js';
import type { BrokerCore } from '../broker-core.js';
import { sharedReads } from '../partitions/read-scheduler.js';
import { Connection, type ConnectionHost, type ReservationPool } from './connection.js';
import { DEFAULT_SERVER_LIMITS, PRESSURE_STALL_MS, type ServerLimits } from './server-limits.js';
import { type ServerTls, type ServerTlsOptions, serverTls } from './tls.js';

export type { ServerLimits } from './server-limits.js';

export interface NetworkServerOptions {
  core: BrokerCore;
  host: string;
  port: number;
  limits?: Partial<ServerLimits>;
  logger?: BrokerLogger;
  /** Serve clients over TLS only (tls.ts); plain TCP when not set. */
  tls?: ServerTlsOptions;
  /** Require authentication (SCRAM) before any other request; open when not set. */
  auth?: BrokerAuthenticator;
  /** Check every request against the ACLs (authz.enabled); every request is allowed when not set. */
  authz?: BrokerAuthorization;
}

/** How often connections with bytes waiting towards them are checked for progress. */
const SWEEP_INTERVAL_MS = 250;
/** Bytes a woken connection may read before it counts them (one socket read). */
const READ_ALLOWANCE = 64 * 1024;
/**
 * A part of the global budget (1/GLOBAL_HEADROOM_DIVISOR) is kept for small fetches of connections
 * that hold next to nothing: clients that pile up reservations, unread responses or half-sent
 * frames fill the rest, never this, so an honest consumer's next fetch runs while they are cut.
 */
const GLOBAL_HEADROOM_DIVISOR = 8;
/** A fetch may use the headroom when its reservation is at most this part of it. */
const HEADROOM_SHARE_DIVISOR = 4;
/**
 * "Holds next to nothing": no responses waiting, no other fetch reserved, no pipelined input
 * beyond a few small requests (a connection with kilobytes of requests queued is not one).
 */
const SMALL_HOLDER_BYTES = 4 * 1024;

export class NetworkServer implements ConnectionHost {
  readonly core: BrokerCore;
  readonly limits: ServerLimits;
  readonly serverId: string;
  readonly logger: BrokerLogger;
  readonly auth: BrokerAuthenticator | null;
  readonly authz: BrokerAuthorization | null;
  private readonly server: Server;
  private readonly tls: ServerTls | null;
  /** TLS handshakes in progress: they count against the connection caps like connections. */
  private tlsHandshakes = 0;
  private readonly connections = new Set<Connection>();
  private readonly perAddress = new Map<string, number>();
  /** Connections waiting for the global budget, in the order they started waiting. */
  private readonly waiting = new Set<Connection>();
  private wakeScheduled = false;
  private readonly sweepTimer: NodeJS.Timeout;
  private globalBytes = 0;
  /** Bytes reserved by fetches running from the headroom (see admitReservation). */
  private headroomReserved = 0;
  private shuttingDown = false;
  readonly fetches = sharedReads;
  /** Connections refused at accept (limits or shutdown), for tests and metrics. */
  refusedConnections = 0;

  private constructor(options: NetworkServerOptions) {
    this.core = options.core;
    this.serverId = options.core.id;
    this.limits = { ...DEFAULT_SERVER_LIMITS, ...options.limits };
    this.logger = options.logger ?? silentLogger;
    this.auth = options.auth ?? null;
    this.authz = options.authz ?? null;
    this.tls = options.tls === undefined ? null : serverTls(options.tls, this.limits.handshakeTimeoutMs);
    this.server = createServer({ noDelay: true }, (socket) => this.accept(socket));
    this.sweepTimer = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    this.sweepTimer.unref();
  }

  static async start(options: NetworkServerOptions): Promise<NetworkServer> {
    const server = new NetworkServer(options);
    try {
      await new Promise<void>((resolve, reject) => {
        server.server.once('error', reject);
        server.server.listen(options.port, options.host, () => {
          server.server.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      clearInterval(server.sweepTimer);
      throw error;
    }
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
      this.connections.size + this.tlsHandshakes >= this.limits.maxConnections ||
      fromAddress >= this.limits.maxConnectionsPerAddress
    ) {
      this.refuse(socket, address, fromAddress);
      return;
    }
    this.perAddress.set(address, fromAddress + 1);
    if (this.tls === null) {
      this.connections.add(new Connection(socket, this));
      return;
    }
    // The handshake holds its place in the caps until it ends.
    this.tlsHandshakes++;
    this.tls.handshake(
      socket,
      (secure) => {
        this.tlsHandshakes--;
        if (this.shuttingDown) {
          secure.destroy();
          this.releaseAddress(address);
        } else this.connections.add(new Connection(secure, this));
      },
      () => {
        this.tlsHandshakes--;
        this.releaseAddress(address);
      },
    );
  }

  private releaseAddress(address: string): void {
    const count = (this.perAddress.get(address) ?? 1) - 1;
    if (count <= 0) this.perAddress.delete(address);
    else this.perAddress.set(address, count);
  }

  /** True when clients must speak TLS to this listener. */
  get secure(): boolean {
    return this.tls !== null;
  }

  /** The certificate, key and CA the listener uses now (null: plain TCP). */
  get tlsOptions(): ServerTlsOptions | null {
    return this.tls?.options ?? null;
  }

  /** New certificates for new connections; open ones keep theirs (see tls.ts). */
  reloadTls(options: ServerTlsOptions): void {
    if (this.tls === null) throw errorOf('INVALID_CONFIG', 'the listener was started without TLS');
    this.tls.reload(options);
  }

  /**
   * Refuses a connection cheaply: one error frame (it fits the kernel's send buffer of a new
   * socket), then the descriptor is closed at once — a flood of refused connections holds none.
   */
  private refuse(socket: Socket, address: string, fromAddress: number): void {
    this.refusedConnections++;
    const entry = this.shuttingDown ? ERROR_TABLE.SHUTTING_DOWN : ERROR_TABLE.TOO_MANY_CONNECTIONS;
    const detail = this.shuttingDown
      ? 'broker is shutting down'
      : fromAddress >= this.limits.maxConnectionsPerAddress
        ? `${fromAddress} connections from ${address}, limit ${this.limits.maxConnectionsPerAddress} per address`
        : `${this.connections.size} connections, limit ${this.limits.maxConnections} in total`;
    // One line per refusal would let a flood fill the log: the first of each burst is logged.
    if (this.refusedConnections % 1000 === 1)
      this.logger.warn(
        {
          remote: `${address}:${socket.remotePort ?? 0}`,
          code: entry === ERROR_TABLE.SHUTTING_DOWN ? 'SHUTTING_DOWN' : 'TOO_MANY_CONNECTIONS',
          reason: detail,
          refused: this.refusedConnections,
        },
        'connection refused',
      );
    socket.on('error', () => undefined);
    if (this.tls !== null) {
      // A TLS client cannot read a plain error frame, and a handshake per refusal is what a flood
      // wants: the connection is closed at once.
      socket.destroy();
      return;
    }
    socket.write(
      encodeFrame(
        { opcode: 0, flags: FrameFlags.RESPONSE | FrameFlags.ERROR, errorCode: entry.code },
        encodeErrorPayload(detail),
      ),
    );
    if (socket.writableLength === 0) socket.destroy();
    else socket.end(() => socket.destroy());
    // Whatever the peer does, the descriptor goes within a second.
    setTimeout(() => socket.destroy(), 1000).unref();
  }

  addGlobalBytes(delta: number): void {
    this.globalBytes += delta;
    if (delta < 0 && this.waiting.size > 0 && !this.wakeScheduled) {
      this.wakeScheduled = true;
      setImmediate(() => this.wake());
    }
  }

  globalBudgetExceeded(): boolean {
    return this.globalBytes > this.limits.globalBudgetBytes;
  }

  globalBudgetFits(bytes: number): boolean {
    return this.globalBytes + bytes <= this.limits.globalBudgetBytes;
  }

  /**
   * Fetches reserve from the shared part of the global budget (all but the headroom; the bytes the
   * headroom's fetches hold are not charged to it). A small fetch of a connection holding next to
   * nothing that does not fit there takes the headroom, whatever else holds the budget (frames
   * arriving, unread responses): the headroom is its own pool, so the global budget is passed by at
   * most the headroom.
   */
  admitReservation(bytes: number, heldByRequester: number): ReservationPool | null {
    const headroom = this.headroomBytes;
    if (this.globalBytes - this.headroomReserved + bytes <= this.limits.globalBudgetBytes - headroom)
      return 'shared';
    const small = heldByRequester <= SMALL_HOLDER_BYTES && bytes <= headroom / HEADROOM_SHARE_DIVISOR;
    if (small && this.headroomReserved + bytes <= headroom) return 'headroom';
    return null;
  }

  takeHeadroom(bytes: number): void {
    this.headroomReserved += bytes;
  }

  releaseHeadroom(bytes: number): void {
    this.headroomReserved -= bytes;
  }

  private get headroomBytes(): number {
    return Math.floor(this.limits.globalBudgetBytes / GLOBAL_HEADROOM_DIVISOR);
  }

  get heldBytes(): number {
    return this.globalBytes;
  }

  waitForBudget(connection: Connection): void {
    this.waiting.add(connection);
  }

  /**
   * Bytes were freed: connections that waited for the global budget retry while there is room
   * (each that reads again may read one socket chunk before counting it). Those holding least go
   * first, then the longest waiting: a small producer is not starved by connections that each hold
   * megabytes. One that still does not fit waits again.
   */
  private wake(): void {
    this.wakeScheduled = false;
    let allowance = 0;
    // The sort is stable: equal holders keep the order in which they started waiting.
    for (const connection of [...this.waiting].sort((a, b) => a.held - b.held)) {
      if (!this.globalBudgetFits(allowance + READ_ALLOWANCE)) break;
      this.waiting.delete(connection);
      if (connection.retry()) allowance += READ_ALLOWANCE;
    }
  }

  /**
   * Re-counts the outbound bytes of connections with some waiting (the kernel takes them without an
   * event), and cuts clients that take none of them for writeStallTimeoutMs — or for a second while
   * the global budget is exhausted, when their bytes keep others waiting. Under that pressure, a
   * client silent for a second in the middle of a frame is closed too (FRAME_TIMEOUT).
   */
  private sweep(): void {
    const now = Date.now();
    // Pressure: a connection waits for the global budget and what it needs does not fit (a read,
    // or the reservation of its parked fetch).
    let pressure = false;
    for (const connection of this.waiting)
      if (!this.globalBudgetFits(READ_ALLOWANCE) || connection.blockedByGlobalBudget) {
        pressure = true;
        break;
      }
    let finishing = false;
    let oldestPausedInFrame: Connection | null = null;
    for (const connection of this.connections) {
      if (connection.finishingFrame) finishing = true;
      else if (pressure && oldestPausedInFrame === null && connection.pausedInFrame)
        oldestPausedInFrame = connection;
      connection.probeWhilePaused(now);
      if (connection.outboundBytes === 0 && connection.held === 0) continue;
      // Under pressure, a frame left halfway by a client that went silent is not waited for.
      const silent = pressure ? connection.partialFrameSilentMs(now) : 0;
      if (silent >= PRESSURE_STALL_MS) {
        connection.fatal(
          errorOf(
            'FRAME_TIMEOUT',
            `part of a frame held, nothing sent for ${silent} ms while the global memory budget is exhausted`,
          ),
        );
        continue;
      }
      connection.refreshOutbound();
      const stalled = connection.outboundStalledMs(now);
      if (stalled === 0) continue;
      if (stalled >= this.limits.writeStallTimeoutMs)
        connection.cut(`took none of ${connection.outboundBytes} queued bytes for ${stalled} ms`);
      else if (pressure && stalled >= PRESSURE_STALL_MS)
        connection.cut(
          `took none of ${connection.outboundBytes} queued bytes for ${stalled} ms while the global memory budget is exhausted`,
        );
    }
    // Frames in progress are the bytes that only their completion frees: when all their holders
    // are paused, one (the longest connected) reads on until its frame is whole.
    if (pressure && !finishing && oldestPausedInFrame !== null)
      oldestPausedInFrame.finishFrameUnderPressure();
  }

  onClose(connection: Connection): void {
    this.waiting.delete(connection);
    if (!this.connections.delete(connection)) return;
    this.releaseAddress(connection.remoteAddress);
  }

  /** Stops accepting, sends GOAWAY, waits for in-flight requests up to the deadline, closes all. */
  async shutdown(options: { deadlineMs: number }): Promise<void> {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    clearInterval(this.sweepTimer);
    this.tls?.abortHandshakes();
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
