// One client connection: frames in, requests dispatched to the broker core, responses and pushes
// out. Enforces the handshake, the per-connection memory budget (reading pauses, TCP pushes back),
// the outbound limit (a client that never reads is cut), and the error rules of docs/protocol.md.

import type { Socket } from 'node:net';
import { MemoryStreamerError } from '../../common/errors.js';
import type { BrokerLogger } from '../../metrics/logger.js';
import { BinaryReader } from '../../protocol/codec/binary-reader.js';
import { BinaryWriter } from '../../protocol/codec/binary-writer.js';
import {
  ALL_FEATURES,
  decodeCredit,
  encodeErrorPayload,
  encodeGoaway,
  encodeThrottle,
  handshakeCommand,
} from '../../protocol/commands/control.js';
import { COMMANDS, commandForOpcode } from '../../protocol/commands/registry.js';
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
import type { BrokerCore, CoreCommand } from '../broker-core.js';
import type { PushSubscription } from '../partitions/partition.js';
import { PushScheduler } from './push-scheduler.js';
import type { ServerLimits } from './server-limits.js';

export interface ConnectionHost {
  readonly core: BrokerCore;
  readonly limits: ServerLimits;
  readonly serverId: string;
  readonly logger: BrokerLogger;
  /** Bytes held by all connections; the host decides when the global budget is exceeded. */
  addGlobalBytes(delta: number): void;
  globalBudgetExceeded(): boolean;
  onClose(connection: Connection): void;
}

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
  private heldBytes = 0;
  private paused = false;
  private throttled = false;
  private drainWaiters: Array<() => void> = [];
  private released = false;
  private clientId = '';
  private readonly remote: string;
  private readonly pushQueue = new PushScheduler();

  constructor(socket: Socket, host: ConnectionHost) {
    this.socket = socket;
    this.host = host;
    this.remoteAddress = socket.remoteAddress ?? 'unknown';
    this.remote = `${this.remoteAddress}:${socket.remotePort ?? 0}`;
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
      this.updateBudget();
    });
    this.handshakeTimer = setTimeout(() => {
      if (this.state === 'handshake')
        this.fatal(errorOf('HANDSHAKE_TIMEOUT', `no handshake in ${host.limits.handshakeTimeoutMs} ms`));
    }, host.limits.handshakeTimeoutMs);
  }

  isClosed(): boolean {
    return this.state === 'closed';
  }

  get requestsInFlight(): number {
    return this.inFlightRequests;
  }

  private onData(chunk: Buffer): void {
    if (this.state === 'closed') return;
    this.decoder.push(chunk);
    this.socket.cork();
    try {
      for (;;) {
        let frame: Frame | null;
        try {
          frame = this.decoder.next();
        } catch (error) {
          this.fatal(error);
          return;
        }
        if (frame === null) break;
        this.dispatch(frame);
        if (this.isClosed()) return;
      }
    } finally {
      // Everything answered synchronously from this chunk (pings, credit errors, pushes) leaves in
      // one write, now: no nextTick per chunk. Answers that complete later are written as they do.
      this.socket.uncork();
    }
    this.updateBudget();
  }

  /** Pauses reading while this connection, or all of them together, hold more than their budget. */
  private updateBudget(): void {
    if (this.state === 'closed') return;
    const held = this.decoder.bufferedBytes + this.inFlightBytes;
    this.host.addGlobalBytes(held - this.heldBytes);
    this.heldBytes = held;
    const over = held > this.host.limits.connectionBudgetBytes || this.host.globalBudgetExceeded();
    if (over && !this.paused) {
      this.paused = true;
      this.socket.pause();
      if (!this.throttled) {
        this.throttled = true;
        this.host.core.metrics.recordThrottle();
        this.sendFrame(
          { opcode: Opcode.THROTTLE, flags: FrameFlags.PUSH },
          encodeThrottle({
            throttleMs: 10,
            reason: 'memory budget exceeded; reading paused until requests complete',
          }),
        );
      }
    } else if (!over && this.paused) {
      this.paused = false;
      this.throttled = false;
      this.socket.resume();
    }
  }

  private dispatch(frame: Frame): void {
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
    const name = commandForOpcode(header.opcode);
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
      this.sendError(header.correlationId, header.opcode, errorOf('TOO_MANY_REQUESTS_IN_FLIGHT'));
      return;
    }
    void this.execute(name as CoreCommand, frame);
  }

  private async execute(name: CoreCommand, frame: Frame): Promise<void> {
    const { correlationId, opcode } = frame.header;
    const size = frame.payload.length;
    this.inFlightRequests++;
    this.inFlightBytes += size;
    try {
      const codec = COMMANDS[name];
      const reader = new BinaryReader(frame.payload);
      const request = codec.decodeRequest(reader);
      if (opcode !== Opcode.PRODUCE && opcode !== Opcode.FETCH) reader.end();
      const response = await this.host.core.execute(name, request as never);
      if (this.state === 'closed') return;
      const writer = new BinaryWriter(name === 'fetch' || name === 'produce' ? 64 : 256);
      codec.encodeResponse(writer, response as never);
      this.sendFrame({ opcode, correlationId, flags: FrameFlags.RESPONSE }, writer.finish());
    } catch (error) {
      this.sendError(correlationId, opcode, error);
    } finally {
      this.inFlightRequests--;
      this.inFlightBytes -= size;
      this.updateBudget();
      if (this.inFlightRequests === 0) for (const wake of this.drainWaiters.splice(0)) wake();
    }
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
    if (this.handshakeTimer !== null) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
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

  private subscribe(frame: Frame): void {
    const { correlationId } = frame.header;
    try {
      const reader = new BinaryReader(frame.payload);
      const request = COMMANDS.subscribe.decodeRequest(reader);
      reader.end();
      const channelId = this.nextChannelId++;
      const { subscription, offset } = this.host.core.subscribe(
        request,
        (batches, highWatermark) => this.push(channelId, frame.header.priority, batches, highWatermark),
        (error) => {
          this.channels.delete(channelId);
          this.sendError(0, Opcode.PUSH_BATCH, error, channelId, FrameFlags.PUSH | FrameFlags.END_OF_STREAM);
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
      this.sendError(correlationId, Opcode.SUBSCRIBE, error);
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
      subscription.grant(bytes);
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
  }

  private writeParts(parts: readonly Buffer[]): void {
    this.socket.cork();
    for (const part of parts) this.socket.write(part);
    process.nextTick(() => this.socket.uncork());
  }

  /** On drain: write queued pushes, highest priority first, until the socket is backed up again. */
  private drainPushes(): void {
    while (this.socket.writableLength < PUSH_QUEUE_THRESHOLD) {
      const push = this.pushQueue.next();
      if (push === undefined) return;
      this.writeParts(push.parts);
    }
  }

  private sendFrame(fields: Parameters<typeof encodeFrame>[0], payload: Buffer): void {
    if (this.state === 'closed' || this.socket.destroyed) return;
    this.socket.write(encodeFrame(fields, payload));
    this.checkOutbound();
  }

  /** A client that does not read its responses and pushes is cut before it costs unbounded memory. */
  private checkOutbound(): void {
    if (this.socket.writableLength + this.pushQueue.bytes > this.host.limits.maxOutboundBytes) {
      this.socket.destroy();
      this.cleanup();
    }
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
    for (const subscription of this.channels.values()) subscription.close();
    this.channels.clear();
    this.pushQueue.clear();
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
