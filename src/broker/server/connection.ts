// One client connection: frames in, requests dispatched to the broker core, responses and pushes
// out. Enforces the handshake, the error rules of docs/protocol.md, and the memory budget: every byte
// the connection holds — frames arriving, requests in flight, the reservation of each fetch (its
// clamped maxBytes, taken before it runs), responses and pushes queued towards the client — counts
// against its budget and the global one. When a request does not fit, it waits (parked) and reading
// pauses, so pipelined requests stay in the kernel's socket buffer and TCP pushes back; pushes wait
// while the queued outbound bytes are over budget. A connection paused for the global budget is woken
// by the server when others free bytes. A frame that stops arriving halfway times out; a client that
// stops reading is cut (outbound limit, or no progress: see network-server.ts).

import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { MemoryStreamerError } from '../../common/errors.js';
import type { BrokerLogger } from '../../metrics/logger.js';
import { BinaryReader } from '../../protocol/codec/binary-reader.js';
import { BinaryWriter } from '../../protocol/codec/binary-writer.js';
import {
  type AntiEntropyCommandName,
  answerAntiEntropy,
  antiEntropyCommandForOpcode,
} from '../../protocol/commands/anti-entropy-commands.js';
import {
  ALL_FEATURES,
  decodeCredit,
  encodeErrorPayload,
  encodeGoaway,
  encodeThrottle,
  handshakeCommand,
} from '../../protocol/commands/control.js';
import type { FetchResponse } from '../../protocol/commands/data-types.js';
import { COMMANDS, commandForOpcode } from '../../protocol/commands/registry.js';
import {
  REPLICATION_COMMANDS,
  type ReplicationCommandName,
  replicationCommandForOpcode,
} from '../../protocol/commands/replication-commands.js';
import { isTenantOpcode } from '../../protocol/commands/tenant-commands.js';
import { crc32c } from '../../protocol/crc32c.js';
import { ErrorCode, errorOf } from '../../protocol/error-codes.js';
import { type Frame, FrameDecoder } from '../../protocol/frame-decoder.js';
import {
  encodeFrame,
  FRAME_HEADER_SIZE,
  FrameFlags,
  MAX_PROTOCOL_VERSION,
  MIN_PROTOCOL_VERSION,
  writeFrameHeader,
} from '../../protocol/frame-header.js';
import { Opcode } from '../../protocol/opcodes.js';
import { loginEvent, userAlterEvent } from '../../security/audit-events.js';
import {
  authorizationDisabled,
  BrokerAuthorization,
  isAclOpcode,
} from '../../security/authorizer-service.js';
import {
  type BrokerAuthenticator,
  ConnectionAuth,
  certificatePrincipal,
  isAuthOpcode,
} from '../../security/broker-authenticator.js';
import { atExpiry, type ExpiryTimer } from '../../security/token-expiry.js';
import type { BrokerCore, CoreCommand } from '../broker-core.js';
import type { PushSubscription } from '../partitions/partition.js';
import type { ReadScheduler } from '../partitions/read-scheduler.js';
import { type TenantQuotas, tenantQuotasOf } from '../quotas/tenant-quotas.js';
import { PushScheduler } from './push-scheduler.js';
import type { ServerLimits } from './server-limits.js';

export type ReservationPool = 'shared' | 'headroom';

export interface ConnectionHost {
  readonly core: BrokerCore;
  readonly limits: ServerLimits;
  readonly serverId: string;
  readonly logger: BrokerLogger;
  /** Authentication required before any other request (null: off, every connection is open). */
  readonly auth: BrokerAuthenticator | null;
  /** Every request checked against the ACLs (null: authorization off, everything allowed). */
  readonly authz: BrokerAuthorization | null;
  /** Bytes held by all connections; the host decides when the global budget is exceeded. */
  addGlobalBytes(delta: number): void;
  globalBudgetExceeded(): boolean;
  /** True when `bytes` more fit in the global budget. */
  globalBudgetFits(bytes: number): boolean;
  /**
   * Where a fetch reservation of `bytes` from a connection holding `heldByRequester` fits: the
   * shared part of the global budget, the headroom kept for small fetches of connections that hold
   * next to nothing, or nowhere yet (null).
   */
  admitReservation(bytes: number, heldByRequester: number): ReservationPool | null;
  /** A fetch admitted to the headroom runs: its reservation is taken from it until released. */
  takeHeadroom(bytes: number): void;
  releaseHeadroom(bytes: number): void;
  /** The connection waits for the global budget: wake it (`retry`) when bytes are freed. */
  waitForBudget(connection: Connection): void;
  /** Reads for clients at once, process-wide (fetches wait their turn there). */
  readonly fetches: ReadScheduler;
  onClose(connection: Connection): void;
}

/** Bytes a connection may hold whatever the global budget (one socket read). */
const GLOBAL_FLOOR_BYTES = 64 * 1024;
/** How often a connection whose reading is paused is sent THROTTLE again (see probeWhilePaused). */
const PAUSED_PROBE_MS = 1000;
/** Bytes of a fetch response beyond its batches (high watermark, log start offset). */
const FETCH_RESPONSE_OVERHEAD = 64;
/**
 * Frames one connection dispatches before it lets the others run (setImmediate): a flood of tiny
 * requests on some connections costs them turns, not the event loop of everyone else.
 */
export const MAX_FRAMES_PER_TURN = 32;

export class Connection {
  readonly socket: Socket;
  readonly remoteAddress: string;
  private readonly host: ConnectionHost;
  private readonly decoder: FrameDecoder;
  private state: 'handshake' | 'ready' | 'draining' | 'closed' = 'handshake';
  private handshakeTimer: NodeJS.Timeout | null;
  private readonly channels = new Map<number, PushSubscription>();
  private nextChannelId = 1;
  private inFlightRequests = 0;
  private inFlightBytes = 0;
  /** Bytes reserved for the responses of fetches in flight. */
  private reservedBytes = 0;
  private heldBytes = 0;
  /** A decoded request waiting for its reservation to fit; nothing after it is dispatched. */
  private parked: { frame: Frame; reservation: number } | null = null;
  /** Subscriptions whose delivery waits for the outbound bytes to fall within the budget. */
  private readonly heldChannels = new Set<PushSubscription>();
  /** Inside processFrames: requests completing synchronously must not re-enter it. */
  private processing = false;
  private paused = false;
  /** Frames wait for the next turn (MAX_FRAMES_PER_TURN reached); reading stops until then. */
  private yielding = false;
  /** Whether the socket is told to stop reading (paused for the budget, or yielding its turn). */
  private socketPaused = false;
  /**
   * Small frames (answers, errors, throttles) waiting to leave as one write: one buffer per
   * flush instead of one write request per frame, so the bytes counted are the bytes held.
   */
  private smallFrames: Buffer[] = [];
  private smallBytes = 0;
  private flushScheduled = false;
  /** The socket is corked for this tick's pushes (writeParts); uncorked on the next tick. */
  private pushesCorked = false;
  private throttled = false;
  private throttleSentAt = 0;
  /** framesDecoded while let through past the global budget to finish a frame; -1 when not. */
  private exemptUntilFrame = -1;
  /** When bytes last arrived (a frame left halfway is timed from it under memory pressure). */
  private lastDataAt = Date.now();
  private frameTimer: NodeJS.Timeout | null = null;
  /** `decoder.framesDecoded` when the frame timer started: a frame completed since means a new one. */
  private framesAtTimerStart = 0;
  /** Bytes handed to the kernel when last sampled, and when that count last moved (stall detection). */
  private sentSample = 0;
  private sentMovedAt = Date.now();
  private drainWaiters: Array<() => void> = [];
  private released = false;
  private clientId = '';
  /** False until the connection authenticated, on a broker that requires it (see authRequest). */
  private authenticated: boolean;
  private connectionAuth: ConnectionAuth | null = null;
  /** An authentication failed: its answer waits out the delay, then the connection closes. */
  private authFailing = false;
  /** A bearer token's expiry closes the connection (token-expiry.ts). */
  private tokenExpiry: ExpiryTimer | null = null;
  private readonly remote: string;
  private readonly pushQueue = new PushScheduler();
  /** Tenants and quotas (null: authentication off); `quotaHold` holds reading while a quota runs ahead. */
  private readonly tenants: TenantQuotas | null;
  private quotaHold: NodeJS.Timeout | null = null;
  private quotaHoldUntil = 0;

  constructor(socket: Socket, host: ConnectionHost) {
    this.socket = socket;
    this.host = host;
    this.remoteAddress = socket.remoteAddress ?? 'unknown';
    this.remote = `${this.remoteAddress}:${socket.remotePort ?? 0}`;
    this.authenticated = host.auth === null;
    this.tenants = host.auth === null ? null : tenantQuotasOf(host.core);
    if (host.auth?.mtls === true) this.certificateLogin(socket as TLSSocket);
    this.decoder = new FrameDecoder({
      maxPayloadBytes: host.limits.maxPayloadBytes,
      maxControlPayloadBytes: host.limits.maxControlPayloadBytes,
    });
    socket.setNoDelay(true);
    socket.setTimeout(host.limits.idleTimeoutMs);
    socket.on('timeout', () =>
      this.fatal(errorOf('IDLE_TIMEOUT', `no frame for ${host.limits.idleTimeoutMs} ms`)),
    );
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => this.cleanup());
    socket.on('close', () => this.cleanup());
    socket.on('drain', () => {
      this.drainPushes();
      this.pump();
    });
    this.handshakeTimer = setTimeout(() => {
      if (this.state === 'handshake' || !this.authenticated)
        this.fatal(
          errorOf(
            'HANDSHAKE_TIMEOUT',
            `no ${this.state === 'handshake' ? 'handshake' : 'authentication'} in ${host.limits.handshakeTimeoutMs} ms`,
          ),
        );
    }, host.limits.handshakeTimeoutMs);
  }

  /** `mtls`: a client certificate verified against the listener's CA authenticates the connection. */
  private certificateLogin(socket: TLSSocket): void {
    if (typeof socket.getPeerCertificate !== 'function') return;
    const presented = socket.authorized || Object.keys(socket.getPeerCertificate()).length > 0;
    const principal = socket.authorized
      ? certificatePrincipal(socket.getPeerCertificate().subject?.CN)
      : null;
    if (principal === null) {
      if (presented)
        this.host.core.audit?.record(
          loginEvent(
            null,
            this.remote,
            'mtls',
            socket.authorizationError?.message ?? 'common name is no user name',
          ),
        );
      return;
    }
    this.host.core.audit?.record(loginEvent(principal, this.remote, 'mtls'));
    this.connectionAuth = new ConnectionAuth(this.host.auth, this.remoteAddress);
    this.connectionAuth.authenticatedAs(principal);
    this.authenticated = true;
    this.host.logger.info({ remote: this.remote, principal, mechanism: 'mtls' }, 'authenticated');
  }

  /** `User:<name>` once the connection authenticated; null on an open broker or before. */
  get principal(): string | null {
    return this.connectionAuth?.principal ?? null;
  }

  /** `address:port` of the client (with `principal`, the caller the audit log names). */
  get source(): string {
    return this.remote;
  }

  /** Who requests are authorized as: the authenticated principal, else User:ANONYMOUS. */
  private get authzPrincipal(): string {
    return BrokerAuthorization.principalOf(this.principal);
  }

  /** ACL_LIST / ACL_ALTER (authorizer-service.ts), refused when authorization is off. */
  private aclRequest(frame: Frame): void {
    const { correlationId, opcode } = frame.header;
    const authz = this.host.authz;
    const answer =
      authz === null
        ? Promise.reject(authorizationDisabled())
        : authz.handleAclRequest(this.authzPrincipal, opcode, frame.payload);
    answer.then(
      (payload) => this.sendFrame({ opcode, correlationId, flags: FrameFlags.RESPONSE }, payload),
      (error: unknown) => this.sendError(correlationId, opcode, error),
    );
  }

  isClosed(): boolean {
    return this.state === 'closed';
  }

  get requestsInFlight(): number {
    return this.inFlightRequests;
  }

  private onData(chunk: Buffer): void {
    if (this.state === 'closed') return;
    this.lastDataAt = Date.now();
    this.decoder.push(chunk);
    this.pump();
  }

  /**
   * Dispatches what can be dispatched (the parked request first, then decoded frames in order),
   * then settles the budget: reading pauses while anything waits or the budget is exceeded.
   * Called on input, on request completion, on drain and when the server wakes the connection.
   */
  private pump(): void {
    if (this.state === 'closed') return;
    if (this.processing) return;
    this.processing = true;
    this.socket.cork();
    try {
      this.processFrames();
    } finally {
      this.processing = false;
      // Everything answered synchronously (pings, credit errors, pushes) leaves in one write, now.
      this.flushSmallFrames();
      if (!this.socket.destroyed) this.socket.uncork();
    }
    if (this.isClosed()) return;
    this.updateBudget();
    this.updateFrameTimer();
  }

  private processFrames(): void {
    if (this.yielding || this.quotaHold !== null) return;
    if (this.parked !== null) {
      const { frame, reservation } = this.parked;
      const pool = this.admission(reservation);
      if (pool === null) return;
      this.parked = null;
      this.dispatch(frame, { reservation, pool });
      if (this.isClosed()) return;
    }
    let dispatched = 0;
    for (;;) {
      if (dispatched >= MAX_FRAMES_PER_TURN && this.decoder.bufferedBytes > 0) {
        this.yieldTurn();
        return;
      }
      let frame: Frame | null;
      try {
        frame = this.decoder.next();
      } catch (error) {
        this.fatal(error);
        return;
      }
      if (frame === null) return;
      this.dispatch(frame);
      dispatched++;
      if (this.isClosed() || this.parked !== null) return;
    }
  }

  /** Lets the other connections run before this one dispatches more (reading stops meanwhile). */
  private yieldTurn(): void {
    this.yielding = true;
    setImmediate(() => {
      this.yielding = false;
      this.pump();
    });
  }

  /** Bytes this connection holds: input, requests, reservations and what waits towards the client. */
  private currentHeldBytes(): number {
    return (
      this.decoder.bufferedBytes +
      this.inFlightBytes +
      this.reservedBytes +
      (this.parked?.frame.payload.length ?? 0) +
      this.outboundBytes
    );
  }

  /** Responses and pushes not yet handed to the kernel. */
  get outboundBytes(): number {
    return this.socket.writableLength + this.pushQueue.bytes + this.smallBytes;
  }

  /** Bytes held, as last counted in the global budget. */
  get held(): number {
    return this.heldBytes;
  }

  /**
   * A fetch runs only when its reservation fits this connection's budget (always when the
   * connection holds nothing else, so a budget below one fetch cannot lock it out) and the global one.
   */
  private admission(reservation: number): ReservationPool | null {
    const held = this.currentHeldBytes();
    const own = held === 0 || held + reservation <= this.host.limits.connectionBudgetBytes;
    return own ? this.host.admitReservation(reservation, held) : null;
  }

  /** A parked fetch that fits this connection's budget but not the global one. */
  get blockedByGlobalBudget(): boolean {
    if (this.parked === null || this.state === 'closed') return false;
    const held = this.currentHeldBytes();
    const own = held === 0 || held + this.parked.reservation <= this.host.limits.connectionBudgetBytes;
    return own && this.host.admitReservation(this.parked.reservation, held) === null;
  }

  /**
   * Counts what the connection holds into the global budget, and pauses reading while a request is
   * parked or either budget is exceeded; resumes when not. Pushes are held and released likewise.
   */
  private updateBudget(): void {
    if (this.state === 'closed') return;
    const held = this.currentHeldBytes();
    this.host.addGlobalBytes(held - this.heldBytes);
    this.heldBytes = held;
    const ownOver = held > this.host.limits.connectionBudgetBytes;
    // A connection let through to finish its frame (see finishFrameUnderPressure) ignores the
    // global budget until that frame is complete.
    if (this.exemptUntilFrame >= 0 && this.decoder.framesDecoded > this.exemptUntilFrame)
      this.exemptUntilFrame = -1;
    // A connection holding at most one read is not paused for the global budget: a producer of
    // small messages keeps going while others hold the budget (the cost: one read per connection).
    const globalOver =
      this.exemptUntilFrame < 0 && held > GLOBAL_FLOOR_BYTES && this.host.globalBudgetExceeded();
    this.holdOrReleasePushes(ownOver || globalOver);
    const over = this.parked !== null || ownOver || globalOver;
    // Waiting for others to free bytes: the server wakes this connection when they do.
    if (globalOver || (this.parked !== null && !ownOver)) this.host.waitForBudget(this);
    if (over && !this.paused) {
      this.paused = true;
      if (!this.throttled) {
        this.throttled = true;
        this.host.core.metrics.recordThrottle();
        this.sendThrottle();
      }
    } else if (!over && this.paused) {
      this.paused = false;
      this.throttled = false;
    }
    const stopReading = this.paused || this.yielding || this.quotaHold !== null;
    if (stopReading !== this.socketPaused) {
      this.socketPaused = stopReading;
      if (stopReading) this.socket.pause();
      else this.socket.resume();
    }
  }

  private sendThrottle(): void {
    this.throttleSentAt = Date.now();
    this.sendFrame(
      { opcode: Opcode.THROTTLE, flags: FrameFlags.PUSH },
      encodeThrottle({
        throttleMs: 10,
        reason: 'memory budget exceeded; reading paused until requests complete',
      }),
    );
  }

  get readingPaused(): boolean {
    return this.paused;
  }

  /**
   * While reading is paused the socket does not notice that the client left (nothing reads the
   * end of the stream): a THROTTLE every second tells the client it is still held back, and a write
   * to a peer that is gone fails, which closes the connection and frees its bytes.
   */
  probeWhilePaused(now: number): void {
    if (this.paused && this.state !== 'closed' && now - this.throttleSentAt >= PAUSED_PROBE_MS)
      this.sendThrottle();
  }

  private holdOrReleasePushes(over: boolean): void {
    if (over) return;
    if (this.heldChannels.size === 0) return;
    const held = [...this.heldChannels];
    this.heldChannels.clear();
    for (const subscription of held) subscription.resumeDelivery();
  }

  /** The server wakes a connection that waited for the global budget; true when it reads again. */
  retry(): boolean {
    if (this.state === 'closed') return false;
    this.refreshOutbound();
    this.pump();
    return !this.paused;
  }

  /** Re-counts the outbound bytes (the kernel takes them without an event until the queue is empty). */
  refreshOutbound(): void {
    if (this.state === 'closed') return;
    const sent = this.socket.bytesWritten - this.socket.writableLength;
    if (sent !== this.sentSample || this.outboundBytes === 0) {
      this.sentSample = sent;
      this.sentMovedAt = Date.now();
    }
    if (this.currentHeldBytes() !== this.heldBytes) this.pump();
  }

  /** Milliseconds for which bytes have been waiting towards the client without any taken; 0 if none wait. */
  outboundStalledMs(now: number): number {
    if (this.outboundBytes === 0) return 0;
    return now - this.sentMovedAt;
  }

  /**
   * Milliseconds since the client last sent a byte while part of a frame is held and reading is on
   * (a connection the broker paused cannot send; a parked one waits for the budget); 0 otherwise.
   */
  partialFrameSilentMs(now: number): number {
    if (this.state === 'closed' || this.paused || this.parked !== null || !this.decoder.hasPartialFrame)
      return 0;
    return now - this.lastDataAt;
  }

  /** True when reading is paused while part of a frame is held (it cannot finish it by itself). */
  get pausedInFrame(): boolean {
    return this.paused && this.parked === null && this.decoder.hasPartialFrame && this.state !== 'closed';
  }

  get finishingFrame(): boolean {
    return this.exemptUntilFrame >= 0 && this.state !== 'closed';
  }

  /**
   * Under memory pressure, when every connection holding part of a frame is paused, none can
   * complete one and free its bytes: the server lets one read on until its frame is whole (at most
   * one frame over the budget). If it goes silent instead, it is closed (partialFrameSilentMs).
   */
  finishFrameUnderPressure(): void {
    if (!this.pausedInFrame) return;
    this.exemptUntilFrame = this.decoder.framesDecoded;
    this.lastDataAt = Date.now();
    this.pump();
  }

  /** A frame whose first bytes arrived must arrive whole within frameTimeoutMs. */
  private updateFrameTimer(): void {
    // A parked request waits for the budget, not for the client: its frames are not timed.
    const arriving = this.parked === null && this.decoder.hasPartialFrame;
    if (!arriving) {
      if (this.frameTimer !== null) clearTimeout(this.frameTimer);
      this.frameTimer = null;
      return;
    }
    if (this.frameTimer !== null && this.decoder.framesDecoded === this.framesAtTimerStart) return;
    // A frame completed since the timer started: the one arriving now started after it.
    this.framesAtTimerStart = this.decoder.framesDecoded;
    if (this.frameTimer !== null) {
      this.frameTimer.refresh();
      return;
    }
    const timeoutMs = this.host.limits.frameTimeoutMs;
    this.frameTimer = setTimeout(() => {
      this.frameTimer = null;
      if (this.state === 'closed' || this.parked !== null || !this.decoder.hasPartialFrame) return;
      this.fatal(
        errorOf(
          'FRAME_TIMEOUT',
          `${this.decoder.bufferedBytes} bytes of a frame arrived, not the rest within ${timeoutMs} ms`,
        ),
      );
    }, timeoutMs);
  }

  private dispatch(frame: Frame, admitted?: { reservation: number; pool: ReservationPool }): void {
    const { header } = frame;
    if (!frame.payloadCrcValid) {
      this.sendError(header.correlationId, header.opcode, errorOf('BAD_PAYLOAD_CRC'));
      return;
    }
    if (header.flags & (FrameFlags.RESPONSE | FrameFlags.PUSH)) {
      this.fatal(errorOf('BAD_FLAGS', 'clients send requests only'));
      return;
    }
    if (this.state === 'handshake') {
      if (header.opcode !== Opcode.HANDSHAKE) {
        this.fatal(errorOf('HANDSHAKE_REQUIRED'), header.correlationId);
        return;
      }
      this.handshake(frame);
      return;
    }
    if (!this.authenticated || isAuthOpcode(header.opcode)) {
      this.authRequest(frame);
      return;
    }
    if ((this.tenants !== null || isTenantOpcode(header.opcode)) && !this.tenantGate(frame)) return;
    switch (header.opcode) {
      case Opcode.HANDSHAKE:
        this.sendError(
          header.correlationId,
          header.opcode,
          errorOf('INVALID_REQUEST', 'handshake already done'),
        );
        return;
      case Opcode.PING:
        this.sendFrame(
          { opcode: Opcode.PING, correlationId: header.correlationId, flags: FrameFlags.RESPONSE },
          EMPTY,
        );
        return;
      case Opcode.CREDIT:
        this.credit(frame);
        return;
      case Opcode.SUBSCRIBE:
        this.subscribe(frame);
        return;
      case Opcode.UNSUBSCRIBE:
        this.unsubscribe(frame);
        return;
    }
    if (isAclOpcode(header.opcode)) {
      this.aclRequest(frame);
      return;
    }
    const name = commandForOpcode(header.opcode);
    const replication =
      name === undefined
        ? (replicationCommandForOpcode(header.opcode) ?? antiEntropyCommandForOpcode(header.opcode))
        : undefined;
    if (replication !== undefined && this.host.core.replicaRequests !== null) {
      const refused = this.host.authz?.checkBrokerRequest(this.authzPrincipal, this.remote) ?? null;
      if (refused !== null) {
        this.sendError(header.correlationId, header.opcode, refused);
        return;
      }
      this.replicaRequest(replication, frame);
      return;
    }
    if (header.opcode === Opcode.BROKER_HEARTBEAT && this.refusedAsNotBroker(frame, 'broker heartbeat'))
      return;
    if (name === undefined) {
      this.sendError(
        header.correlationId,
        header.opcode,
        errorOf('UNKNOWN_OPCODE', `0x${header.opcode.toString(16)}`),
      );
      return;
    }
    if (this.state === 'draining') {
      this.sendError(header.correlationId, header.opcode, errorOf('SHUTTING_DOWN'));
      return;
    }
    if (this.inFlightRequests >= this.host.limits.maxInFlightRequests) {
      this.sendError(
        header.correlationId,
        header.opcode,
        errorOf('TOO_MANY_REQUESTS_IN_FLIGHT', `limit ${this.host.limits.maxInFlightRequests}`),
      );
      return;
    }
    let request: unknown;
    try {
      const reader = new BinaryReader(frame.payload);
      request = COMMANDS[name as CoreCommand].decodeRequest(reader);
      if (header.opcode !== Opcode.PRODUCE && header.opcode !== Opcode.FETCH) reader.end();
      if (this.tenants !== null) this.tenantRequest(name, request);
    } catch (error) {
      this.sendError(header.correlationId, header.opcode, error);
      return;
    }
    const refused =
      this.host.authz?.checkRequest(this.authzPrincipal, name, request as never, this.remote) ?? null;
    if (refused !== null) {
      this.sendError(header.correlationId, header.opcode, refused);
      return;
    }
    let reservation = 0;
    let pool: ReservationPool | null = 'shared';
    if (header.opcode === Opcode.FETCH) {
      // The response is reserved before the fetch runs, at most the server's fetch limit whatever
      // the client asked for; a fetch that does not fit waits, and reading with it.
      const fetch = request as { maxBytes: number };
      fetch.maxBytes = Math.min(fetch.maxBytes, this.host.limits.maxFetchBytes);
      reservation = admitted?.reservation ?? fetch.maxBytes + FETCH_RESPONSE_OVERHEAD;
      pool = admitted?.pool ?? this.admission(reservation);
      if (pool === null) {
        this.parked = { frame, reservation };
        return;
      }
    }
    void this.execute(name as CoreCommand, frame, request, reservation, pool === 'headroom');
  }

  private async execute(
    name: CoreCommand,
    frame: Frame,
    request: unknown,
    reservation: number,
    fromHeadroom: boolean,
  ): Promise<void> {
    const { correlationId, opcode } = frame.header;
    const size = frame.payload.length;
    if (fromHeadroom) this.host.takeHeadroom(reservation);
    this.inFlightRequests++;
    this.inFlightBytes += size;
    this.reservedBytes += reservation;
    // Counted now, before the request runs: the next reservation check sees it.
    if (reservation > 0) this.updateBudget();
    try {
      const codec = COMMANDS[name];
      let response: unknown;
      if (name === 'fetch') {
        await this.host.fetches.acquire(this);
        try {
          if (this.state === 'closed') return;
          response = await this.host.core.execute(name, request as never);
        } finally {
          this.host.fetches.release();
        }
      } else {
        response = await this.host.core.execute(name, request as never, this);
      }
      if (this.state === 'closed') return;
      // Topic and group lists show only what the principal may describe (by the names as stored:
      // the ACLs of a tenant's principal name `<tenant>.<topic>`, as its requests were checked).
      if (this.host.authz !== null)
        response = this.host.authz.filter(this.authzPrincipal, name, response as never);
      if (this.tenants !== null) response = this.tenantResponse(name, request, response);
      if (name === 'fetch') {
        this.sendFetchResponse(correlationId, response as FetchResponse);
        return;
      }
      const writer = new BinaryWriter(name === 'produce' ? 64 : 256);
      codec.encodeResponse(writer, response as never);
      this.sendFrame({ opcode, correlationId, flags: FrameFlags.RESPONSE }, writer.finish());
    } catch (error) {
      this.sendError(correlationId, opcode, this.tenantError(error));
    } finally {
      this.inFlightRequests--;
      this.inFlightBytes -= size;
      this.reservedBytes -= reservation;
      if (fromHeadroom) this.host.releaseHeadroom(reservation);
      if (this.processing) this.updateBudget();
      else this.pump();
      if (this.inFlightRequests === 0) {
        // A shutdown waiting for this request may close the socket at once: the answer leaves first.
        this.flushSmallFrames();
        for (const wake of this.drainWaiters.splice(0)) wake();
      }
    }
  }

  /**
   * With authentication on, broker-to-broker requests are served to the cluster's brokers only
   * (auth.brokerPrincipals): a client may not read replicas, compare segments or heartbeat for a
   * broker. True when refused (AUTHORIZATION_FAILED sent).
   */
  private refusedAsNotBroker(frame: Frame, what: string): boolean {
    const auth = this.host.auth;
    if (auth === null || auth.isBroker(this.principal)) return false;
    // Without broker principals (a single broker) the ACLs decide, when there are any (cluster_action).
    if (auth.brokerPrincipals.size === 0 && this.host.authz !== null) return false;
    this.sendError(
      frame.header.correlationId,
      frame.header.opcode,
      errorOf(
        'AUTHORIZATION_FAILED',
        `${what} is for the brokers of the cluster (cluster.broker_principals); ${this.principal} is not one`,
      ),
    );
    return true;
  }

  /**
   * A broker-to-broker request (replica fetch, offsets for leader epoch, anti-entropy), for the cluster member's
   * handler. Counted in flight like any request; a replica fetch's answer is bounded by the
   * server's frame limit.
   */
  private replicaRequest(name: ReplicationCommandName | AntiEntropyCommandName, frame: Frame): void {
    if (this.refusedAsNotBroker(frame, name)) return;
    const { correlationId, opcode } = frame.header;
    const handler = this.host.core.replicaRequests!;
    if (this.state === 'draining' || this.inFlightRequests >= this.host.limits.maxInFlightRequests) {
      this.sendError(
        correlationId,
        opcode,
        this.state === 'draining' ? errorOf('SHUTTING_DOWN') : errorOf('TOO_MANY_REQUESTS_IN_FLIGHT'),
      );
      return;
    }
    this.inFlightRequests++;
    const run = async (): Promise<Buffer> => {
      const reader = new BinaryReader(frame.payload);
      const writer = new BinaryWriter(256);
      if (name === 'replicaFetch') {
        const request = REPLICATION_COMMANDS.replicaFetch.decodeRequest(reader);
        reader.end();
        request.maxBytes = Math.min(request.maxBytes, this.host.limits.maxPayloadBytes - 64 * 1024);
        REPLICATION_COMMANDS.replicaFetch.encodeResponse(writer, await handler.replicaFetch(request));
      } else if (name === 'offsetsForLeaderEpoch') {
        const request = REPLICATION_COMMANDS.offsetsForLeaderEpoch.decodeRequest(reader);
        reader.end();
        REPLICATION_COMMANDS.offsetsForLeaderEpoch.encodeResponse(
          writer,
          await handler.offsetsForLeaderEpoch(request),
        );
      } else {
        await answerAntiEntropy(name, reader, writer, handler.antiEntropy);
      }
      return writer.finish();
    };
    run()
      .then(
        (payload) => {
          if (this.state !== 'closed')
            this.sendFrame({ opcode, correlationId, flags: FrameFlags.RESPONSE }, payload);
        },
        (error: unknown) => {
          if (this.state !== 'closed') this.sendError(correlationId, opcode, error);
        },
      )
      .finally(() => {
        this.inFlightRequests--;
        if (!this.processing) this.pump();
        if (this.inFlightRequests === 0) {
          this.flushSmallFrames();
          for (const wake of this.drainWaiters.splice(0)) wake();
        }
      });
  }

  /**
   * Tenants and quotas before any request after authentication: the connection counts against its connection quota
   * from its first request (over it: CONNECTION_QUOTA_EXCEEDED, closed), TENANT_* go to the tenant
   * registry, broker-to-broker requests are refused to a tenant's principals, and the request rate
   * is charged. False when the frame was answered here.
   */
  private tenantGate(frame: Frame): boolean {
    const { correlationId, opcode } = frame.header;
    const tenants = this.tenants;
    if (tenants === null) {
      this.sendError(
        correlationId,
        opcode,
        errorOf('AUTHORIZATION_FAILED', 'tenants need authentication on'),
      );
      return false;
    }
    try {
      tenants.admitConnection(this, this.principal);
    } catch (error) {
      this.fatal(error, correlationId);
      return false;
    }
    if (isTenantOpcode(opcode)) {
      tenants.admin(this.principal, opcode, frame.payload).then(
        (payload) => this.sendFrame({ opcode, correlationId, flags: FrameFlags.RESPONSE }, payload),
        (error: unknown) => this.sendError(correlationId, opcode, error),
      );
      return false;
    }
    const brokerToBroker =
      replicationCommandForOpcode(opcode) !== undefined || antiEntropyCommandForOpcode(opcode) !== undefined;
    if (brokerToBroker && tenants.namespaceOf(this.principal)?.tenant != null) {
      this.sendError(
        correlationId,
        opcode,
        errorOf('AUTHORIZATION_FAILED', 'not open to principals of a tenant'),
      );
      return false;
    }
    this.holdFor(tenants.charge(this.principal, 'requests', 1));
    return true;
  }

  /** A decoded request in the principal's namespace: names rewritten, tenant quotas checked. */
  private tenantRequest(name: string, request: unknown): void {
    this.tenants!.namespaceOf(this.principal)?.rewriteRequest(name, request as Record<string, unknown>);
    this.tenants!.checkRequest(this.principal, name, request);
  }

  /** A response back in the principal's namespace; produced and fetched bytes charged to its quotas. */
  private tenantResponse(name: string, request: unknown, response: unknown): unknown {
    const tenants = this.tenants!;
    if (name === 'produce')
      this.holdFor(tenants.charge(this.principal, 'produce', (request as { batch: Buffer }).batch.length));
    else if (name === 'fetch')
      this.holdFor(tenants.charge(this.principal, 'fetch', (response as FetchResponse).batches.length));
    const namespace = tenants.namespaceOf(this.principal);
    return namespace === null
      ? response
      : namespace.rewriteResponse(name, response as Record<string, unknown>);
  }

  /** An error as the principal sees it (its tenant's prefix out of the message). */
  private tenantError(error: unknown): unknown {
    return this.tenants?.namespaceOf(this.principal)?.rewriteError(error) ?? error;
  }

  /** A quota runs ahead: reading stops for `ms` (THROTTLE tells the client for how long). */
  private holdFor(ms: number): void {
    const until = Date.now() + ms;
    // A hold already running longer stays as it is (each quota's wait is the longest of them).
    if (ms <= 0 || this.state === 'closed' || until <= this.quotaHoldUntil) return;
    if (this.quotaHold !== null) clearTimeout(this.quotaHold);
    this.quotaHoldUntil = until;
    this.host.core.metrics.recordThrottle();
    this.sendFrame(
      { opcode: Opcode.THROTTLE, flags: FrameFlags.PUSH },
      encodeThrottle({ throttleMs: ms, reason: 'quota exceeded; reading paused' }),
    );
    this.quotaHold = setTimeout(() => {
      this.quotaHold = null;
      this.pump();
    }, ms);
    if (!this.processing) this.updateBudget();
  }

  private handshake(frame: Frame): void {
    const { correlationId } = frame.header;
    let request: ReturnType<typeof handshakeCommand.decodeRequest>;
    try {
      const reader = new BinaryReader(frame.payload);
      request = handshakeCommand.decodeRequest(reader);
      reader.end();
    } catch (error) {
      this.fatal(error, correlationId);
      return;
    }
    const version = Math.min(request.maxVersion, MAX_PROTOCOL_VERSION);
    if (version < Math.max(request.minVersion, MIN_PROTOCOL_VERSION)) {
      this.fatal(
        errorOf(
          'UNSUPPORTED_VERSION',
          `client speaks ${request.minVersion}..${request.maxVersion}, broker ${MIN_PROTOCOL_VERSION}..${MAX_PROTOCOL_VERSION}`,
        ),
        correlationId,
      );
      return;
    }
    // With authentication on, the handshake timer runs on until the connection authenticated.
    if (this.handshakeTimer !== null && this.authenticated) clearTimeout(this.handshakeTimer);
    if (this.authenticated) this.handshakeTimer = null;
    this.state = 'ready';
    this.clientId = request.clientId;
    this.host.logger.info({ remote: this.remote, client: request.clientId, version }, 'connection ready');
    const writer = new BinaryWriter(64);
    handshakeCommand.encodeResponse(writer, {
      version,
      features: request.features & ALL_FEATURES,
      serverId: this.host.serverId,
      maxPayloadBytes: this.host.limits.maxPayloadBytes,
      maxControlPayloadBytes: this.host.limits.maxControlPayloadBytes,
    });
    this.sendFrame({ opcode: Opcode.HANDSHAKE, correlationId, flags: FrameFlags.RESPONSE }, writer.finish());
  }

  /**
   * Authentication and user requests (any time), and every request of a connection not yet
   * authenticated on a broker that requires it: refused with AUTHENTICATION_FAILED naming the
   * mechanisms. A failed authentication is logged, answered after the rate limit's delay, and
   * closes the connection; nothing it sends meanwhile is read.
   */
  private authRequest(frame: Frame): void {
    const { correlationId, opcode } = frame.header;
    if (this.authFailing) return;
    if (!isAuthOpcode(opcode)) {
      this.sendError(correlationId, opcode, this.host.auth!.required);
      return;
    }
    this.connectionAuth ??= new ConnectionAuth(this.host.auth, this.remoteAddress);
    void this.connectionAuth.handle(opcode, frame.payload).then((outcome) => {
      if (opcode === Opcode.USER_ALTER && (outcome.kind === 'answer' || outcome.kind === 'refused'))
        this.host.core.audit?.record(
          userAlterEvent(frame.payload, this, outcome.kind === 'refused' ? outcome.error : undefined),
        );
      if (this.state === 'closed') return;
      switch (outcome.kind) {
        case 'answer':
          this.sendFrame({ opcode, correlationId, flags: FrameFlags.RESPONSE }, outcome.payload);
          return;
        case 'refused':
          this.sendError(correlationId, opcode, outcome.error);
          return;
        case 'authenticated':
          this.authenticated = true;
          if (this.handshakeTimer !== null) clearTimeout(this.handshakeTimer);
          this.handshakeTimer = null;
          if (outcome.expiresAt !== undefined)
            this.tokenExpiry = atExpiry(outcome.expiresAt, () =>
              this.fatal(errorOf('TOKEN_EXPIRED', `${outcome.principal}'s token expired`)),
            );
          this.host.logger.info(
            {
              remote: this.remote,
              client: this.clientId,
              principal: outcome.principal,
              mechanism: outcome.mechanism,
            },
            'authenticated',
          );
          this.host.core.audit?.record(loginEvent(outcome.principal, this.remote, outcome.mechanism));
          this.sendFrame({ opcode, correlationId, flags: FrameFlags.RESPONSE }, outcome.payload);
          return;
        case 'failed': {
          this.authFailing = true;
          this.host.logger.warn(
            {
              remote: this.remote,
              client: this.clientId,
              user: outcome.user,
              code: outcome.error.codeName,
              reason: outcome.reason,
              delayMs: outcome.delayMs,
            },
            'authentication failed',
          );
          this.host.core.audit?.record(
            loginEvent(null, this.remote, null, outcome.reason, outcome.user, outcome.error.codeName),
          );
          setTimeout(() => this.fatal(outcome.error, correlationId), outcome.delayMs).unref();
          return;
        }
      }
    });
  }

  private subscribe(frame: Frame): void {
    const { correlationId } = frame.header;
    try {
      const reader = new BinaryReader(frame.payload);
      const request = COMMANDS.subscribe.decodeRequest(reader);
      reader.end();
      // The tenant's name first, then the check, as dispatch does: the ACLs are on the stored name
      // (a check on the name the principal typed would weigh another topic's entries).
      if (this.tenants !== null) this.tenantRequest('subscribe', request);
      const refused =
        this.host.authz?.checkRequest(this.authzPrincipal, 'subscribe', request, this.remote) ?? null;
      if (refused !== null) throw refused;
      request.credit = Math.min(request.credit, this.host.limits.maxSubscriptionCreditBytes);
      const channelId = this.nextChannelId++;
      const { subscription, offset } = this.host.core.subscribe(
        request,
        (batches, highWatermark) => this.push(channelId, frame.header.priority, batches, highWatermark),
        (error) => {
          const ended = this.channels.get(channelId);
          if (ended !== undefined) this.heldChannels.delete(ended);
          this.channels.delete(channelId);
          const seen = this.tenantError(error);
          this.sendError(0, Opcode.PUSH_BATCH, seen, channelId, FrameFlags.PUSH | FrameFlags.END_OF_STREAM);
        },
      );
      this.channels.set(channelId, subscription);
      const writer = new BinaryWriter(16);
      COMMANDS.subscribe.encodeResponse(writer, { channelId, offset });
      this.sendFrame(
        { opcode: Opcode.SUBSCRIBE, correlationId, flags: FrameFlags.RESPONSE },
        writer.finish(),
      );
    } catch (error) {
      this.sendError(correlationId, Opcode.SUBSCRIBE, this.tenantError(error));
    }
  }

  private unsubscribe(frame: Frame): void {
    const { correlationId } = frame.header;
    try {
      const reader = new BinaryReader(frame.payload);
      const { channelId } = COMMANDS.unsubscribe.decodeRequest(reader);
      reader.end();
      const subscription = this.channels.get(channelId);
      if (subscription === undefined) throw errorOf('UNKNOWN_CHANNEL', `channel ${channelId}`);
      subscription.close();
      this.heldChannels.delete(subscription);
      this.channels.delete(channelId);
      this.sendFrame({ opcode: Opcode.UNSUBSCRIBE, correlationId, flags: FrameFlags.RESPONSE }, EMPTY);
    } catch (error) {
      this.sendError(correlationId, Opcode.UNSUBSCRIBE, error);
    }
  }

  private credit(frame: Frame): void {
    const { correlationId, channelId } = frame.header;
    try {
      const bytes = decodeCredit(frame.payload);
      const subscription = this.channels.get(channelId);
      if (subscription === undefined) throw errorOf('UNKNOWN_CHANNEL', `channel ${channelId}`);
      // The credit a subscription holds is capped by the server, whatever the client grants.
      const room = this.host.limits.maxSubscriptionCreditBytes - subscription.availableCredit;
      if (room > 0) subscription.grant(Math.min(bytes, room));
    } catch (error) {
      // Credit frames are not answered when they succeed, so only failures carry the correlation id.
      this.sendError(correlationId, Opcode.CREDIT, error, channelId);
    }
  }

  /**
   * One PUSH_BATCH frame: header, the high watermark, then the batches as they are (scatter
   * write, no copy). The payload CRC is computed incrementally over the pieces.
   */
  private push(channelId: number, priority: number, batches: readonly Buffer[], highWatermark: bigint): void {
    if (this.state === 'closed') return;
    const head = Buffer.allocUnsafe(FRAME_HEADER_SIZE + 8);
    head.writeBigInt64LE(highWatermark, FRAME_HEADER_SIZE);
    let length = 8;
    let crc = crc32c(head.subarray(FRAME_HEADER_SIZE));
    for (const batch of batches) {
      length += batch.length;
      crc = crc32c(batch, crc);
    }
    writeFrameHeader(
      head,
      0,
      { opcode: Opcode.PUSH_BATCH, channelId, priority, flags: FrameFlags.PUSH },
      length,
      crc,
    );
    const parts = [head, ...batches];
    if (this.pushQueue.empty && this.socket.writableLength < PUSH_QUEUE_THRESHOLD) {
      this.writeParts(parts);
    } else {
      // The socket is backed up: queue by priority and write as it drains.
      this.pushQueue.enqueue({ priority, parts, bytes: FRAME_HEADER_SIZE + length });
    }
    this.checkOutbound();
    if (this.isClosed()) return;
    // Past the budget, this channel waits (credit or not) until the client takes what is queued.
    const subscription = this.channels.get(channelId);
    if (subscription !== undefined) this.tenants?.chargePush(this.principal, subscription, length - 8);
    if (
      subscription !== undefined &&
      (this.currentHeldBytes() > this.host.limits.connectionBudgetBytes || !this.host.globalBudgetFits(0))
    ) {
      subscription.pauseDelivery();
      this.heldChannels.add(subscription);
    }
    if (!this.processing) this.updateBudget();
  }

  /**
   * A FETCH response as header, offsets and the batches as read (scatter write, no copy of the
   * batches; the payload CRC computed over the pieces). Layout: frame header (40 bytes), then
   * highWatermark i64 LE, logStartOffset i64 LE, then the batches.
   */
  private sendFetchResponse(correlationId: number, response: FetchResponse): void {
    if (this.socket.destroyed) return;
    const head = Buffer.allocUnsafe(FRAME_HEADER_SIZE + 16);
    head.writeBigInt64LE(response.highWatermark, FRAME_HEADER_SIZE);
    head.writeBigInt64LE(response.logStartOffset, FRAME_HEADER_SIZE + 8);
    const crc = crc32c(response.batches, crc32c(head.subarray(FRAME_HEADER_SIZE)));
    writeFrameHeader(
      head,
      0,
      { opcode: Opcode.FETCH, correlationId, flags: FrameFlags.RESPONSE },
      16 + response.batches.length,
      crc,
    );
    // Written now (not with the pushes' deferred uncork): the request counts as done after this,
    // and a shutdown waiting for it may close the socket right away.
    this.flushSmallFrames();
    this.noteWrite();
    this.socket.cork();
    this.socket.write(head);
    if (response.batches.length > 0) this.socket.write(response.batches);
    this.socket.uncork();
    this.checkOutbound();
  }

  /** Before a write: when nothing was waiting towards the client, the stall clock starts now. */
  private noteWrite(): void {
    if (this.socket.writableLength === 0 && this.pushQueue.empty) {
      this.sentSample = this.socket.bytesWritten;
      this.sentMovedAt = Date.now();
    }
  }

  private writeParts(parts: readonly Buffer[]): void {
    this.flushSmallFrames();
    this.noteWrite();
    // The pushes of one tick share one cork, released on the next tick (one writev for all of
    // them), with one callback made once per connection instead of a closure per push.
    if (!this.pushesCorked) {
      this.pushesCorked = true;
      this.socket.cork();
      process.nextTick(this.uncorkPushes);
    }
    for (const part of parts) this.socket.write(part);
  }

  private readonly uncorkPushes = (): void => {
    this.pushesCorked = false;
    this.socket.uncork();
  };

  /** On drain: write queued pushes, highest priority first, until the socket is backed up again. */
  private drainPushes(): void {
    while (this.socket.writableLength < PUSH_QUEUE_THRESHOLD) {
      const push = this.pushQueue.next();
      if (push === undefined) return;
      this.writeParts(push.parts);
    }
  }

  /**
   * Queues a frame with the other small frames of this turn; they leave as one write at the end of
   * the dispatching pass, or on the next tick for answers completing asynchronously (many answers
   * completing together leave together). Counted as outbound from now.
   */
  private sendFrame(fields: Parameters<typeof encodeFrame>[0], payload: Buffer): void {
    if (this.state === 'closed' || this.socket.destroyed) return;
    const frame = encodeFrame(fields, payload);
    this.noteWrite();
    this.smallFrames.push(frame);
    this.smallBytes += frame.length;
    this.checkOutbound();
    if (!this.processing && !this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(() => {
        this.flushScheduled = false;
        this.flushSmallFrames();
      });
    }
  }

  /** Hands the queued small frames to the socket as one buffer (before any other write: order). */
  private flushSmallFrames(): void {
    if (this.smallFrames.length === 0) return;
    const frames = this.smallFrames;
    const bytes = this.smallBytes;
    this.smallFrames = [];
    this.smallBytes = 0;
    if (this.socket.destroyed) return;
    this.socket.write(frames.length === 1 ? frames[0]! : Buffer.concat(frames, bytes));
  }

  /** A client that does not read its responses and pushes is cut before it costs unbounded memory. */
  private checkOutbound(): void {
    const outbound = this.outboundBytes;
    if (outbound > this.host.limits.maxOutboundBytes) {
      this.cut(
        `${outbound} bytes queued towards the client, over the outbound limit ${this.host.limits.maxOutboundBytes}`,
      );
    }
  }

  /**
   * Cuts a client that does not read (CLIENT_NOT_READING): at once, without trying to tell it (it
   * would not read that either), and says why in the log.
   */
  cut(reason: string): void {
    if (this.state === 'closed') return;
    this.host.logger.warn(
      { remote: this.remote, client: this.clientId, code: 'CLIENT_NOT_READING', reason },
      'connection cut by the broker',
    );
    this.socket.destroy();
    this.cleanup();
  }

  private sendError(
    correlationId: number,
    opcode: number,
    error: unknown,
    channelId = 0,
    extraFlags = 0,
  ): void {
    const typed =
      error instanceof MemoryStreamerError
        ? error
        : errorOf('INTERNAL_ERROR', error instanceof Error ? error.message : String(error));
    this.sendFrame(
      {
        opcode,
        correlationId,
        channelId,
        errorCode: typed.code,
        flags: FrameFlags.RESPONSE | FrameFlags.ERROR | extraFlags,
      },
      encodeErrorPayload(typed.message),
    );
  }

  /** The byte stream can no longer be trusted (or a limit was hit): say why, then close. */
  fatal(error: unknown, correlationId = 0): void {
    if (this.state === 'closed') return;
    const typed = error instanceof MemoryStreamerError ? error : null;
    this.host.logger.warn(
      { remote: this.remote, code: typed?.codeName ?? 'INTERNAL_ERROR', reason: (error as Error).message },
      'connection closed by the broker',
    );
    this.sendError(correlationId, 0, error);
    this.flushSmallFrames();
    this.state = 'closed';
    this.socket.end();
    // A peer that never reads must not keep the socket half-open.
    setTimeout(() => this.socket.destroy(), 1000).unref();
    this.cleanup();
  }

  /** Graceful shutdown: tell the client, refuse new requests, let in-flight ones finish. */
  goaway(deadlineMs: number): Promise<void> {
    if (this.state === 'closed') return Promise.resolve();
    this.state = 'draining';
    this.sendFrame(
      { opcode: Opcode.GOAWAY, flags: FrameFlags.PUSH },
      encodeGoaway({ reasonCode: ErrorCode.SHUTTING_DOWN, deadlineMs, message: 'broker is shutting down' }),
    );
    this.flushSmallFrames();
    if (this.inFlightRequests === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  close(): void {
    this.socket.destroy();
    this.cleanup();
  }

  private cleanup(): void {
    this.state = 'closed';
    if (this.released) return;
    this.released = true;
    this.host.logger.info({ remote: this.remote, client: this.clientId }, 'connection closed');
    if (this.handshakeTimer !== null) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
    if (this.frameTimer !== null) clearTimeout(this.frameTimer);
    this.frameTimer = null;
    this.tokenExpiry?.cancel();
    if (this.quotaHold !== null) clearTimeout(this.quotaHold);
    this.tenants?.releaseConnection(this);
    this.parked = null;
    this.host.fetches.cancel(this);
    for (const subscription of this.channels.values()) subscription.close();
    this.channels.clear();
    this.heldChannels.clear();
    this.pushQueue.clear();
    this.smallFrames = [];
    this.smallBytes = 0;
    if (this.heldBytes !== 0) {
      this.host.addGlobalBytes(-this.heldBytes);
      this.heldBytes = 0;
    }
    for (const wake of this.drainWaiters.splice(0)) wake();
    this.host.onClose(this);
  }
}

const EMPTY = Buffer.alloc(0);
/** Past this many bytes waiting in the socket, pushes queue by priority instead of writing at once. */
const PUSH_QUEUE_THRESHOLD = 256 * 1024;
