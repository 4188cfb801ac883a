// The TCP transport: one connection to a broker, many requests in flight matched by correlation id,
// push channels for subscriptions, keepalive pings, and reconnection with backoff. Frames are built
// and parsed by the sans-IO protocol layer; this file only moves bytes and keeps the bookkeeping.

import { isIP, connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { CorrelationTable } from '../common/correlation-table.js';
import { MemoryStreamerError } from '../common/errors.js';
import { BinaryReader } from '../protocol/codec/binary-reader.js';
import { BinaryWriter } from '../protocol/codec/binary-writer.js';
import type { CommandCodec } from '../protocol/commands/command.js';
import {
  ALL_FEATURES,
  decodeErrorPayload,
  encodeCredit,
  type HandshakeResponse,
  handshakeCommand,
} from '../protocol/commands/control.js';
import type { SubscribeRequest } from '../protocol/commands/data-types.js';
import { COMMANDS, type RequestOf, type ResponseOf } from '../protocol/commands/registry.js';
import { crc32c } from '../protocol/crc32c.js';
import { errorFromWire, errorOf } from '../protocol/error-codes.js';
import { type Frame, FrameDecoder } from '../protocol/frame-decoder.js';
import {
  encodeFrame,
  FRAME_HEADER_SIZE,
  FrameFlags,
  MAX_PROTOCOL_VERSION,
  MIN_PROTOCOL_VERSION,
  writeFrameHeader,
} from '../protocol/frame-header.js';
import { isDataOpcode, Opcode } from '../protocol/opcodes.js';
import { authenticateOnLink, isAuthenticationError, type SaslOptions } from './sasl.js';
import { closedAfterTls, tlsFailure } from './tls-errors.js';
import type {
  ClientCommand,
  PushHandlers,
  RemoteSubscription,
  RequestOptions,
  Transport,
} from './transport.js';

export interface BrokerAddress {
  host: string;
  port: number;
}

export interface TcpTransportOptions {
  brokers: BrokerAddress[];
  clientId?: string;
  connectTimeoutMs?: number;
  /** Interval of keepalive pings on an otherwise quiet connection. */
  keepaliveMs?: number;
  /** Largest frame payload accepted from the broker. */
  maxPayloadBytes?: number;
  /** Speak TLS to the brokers (their listener has a certificate, `[tls] cert_file`); plain TCP when not set. */
  tls?: ClientTlsOptions;
  /** Authenticate every connection (each reconnection too) before any other request. */
  sasl?: SaslOptions;
}

export interface ClientTlsOptions {
  /** PEM CA certificates the broker's certificate is checked against (default: the system's). */
  ca?: string | Buffer;
  /** PEM client certificate and key, for brokers that require client authentication. */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Name expected in the broker's certificate (default: the host of the address dialled). */
  servername?: string;
}

interface PendingRequest {
  link: Link;
  decode: (payload: Buffer) => unknown;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  /** performance.now() after which the request fails with REQUEST_TIMEOUT. */
  deadline: number;
  /** What timed out (with timeoutMs, the message is built only when it happens). */
  what: string;
  timeoutMs: number;
}

/** One response decoder per command, shared by all its requests (no closure per request). */
const decoders = new Map<ClientCommand, (payload: Buffer) => unknown>();
function decoderOf(name: ClientCommand): (payload: Buffer) => unknown {
  let decode = decoders.get(name);
  if (decode === undefined) {
    const codec = COMMANDS[name];
    decode = (payload) => codec.decodeResponse(new BinaryReader(payload));
    decoders.set(name, decode);
  }
  return decode;
}

/** `memorystreamer+tls://host:port`: the broker is reached over TLS. */
export const TLS_URL_SCHEME = 'memorystreamer+tls://';

/** Parses `host:port`, `[v6]:port`, `memorystreamer://host:port` or `memorystreamer+tls://host:port`. */
export function parseBrokerAddress(text: string): BrokerAddress {
  const trimmed = text
    .trim()
    .replace(/^memorystreamer(\+tls)?:\/\//, '')
    .replace(/\/$/, '');
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(trimmed);
  const port = match ? Number(match[3]) : Number.NaN;
  if (!match || port < 1 || port > 65535) {
    throw errorOf('INVALID_CONFIG', `broker address ${JSON.stringify(text)}: expected host:port (1..65535)`);
  }
  return { host: (match[1] ?? match[2])!, port };
}

class Link {
  readonly socket: Socket;
  readonly decoder: FrameDecoder;
  handshake: HandshakeResponse | null = null;
  closed = false;
  /** Push channels are numbered per connection by the broker. */
  readonly channels = new Map<number, PushHandlers>();
  constructor(socket: Socket, maxPayloadBytes: number) {
    this.socket = socket;
    this.decoder = new FrameDecoder({ maxPayloadBytes, maxControlPayloadBytes: maxPayloadBytes });
  }
}

export class TcpTransport implements Transport {
  private readonly options: Required<Omit<TcpTransportOptions, 'sasl'>>;
  private link: Link | null = null;
  private connecting: Promise<Link> | null = null;
  /**
   * Every connection whose socket has not closed: the current one, one being opened, ones draining
   * after GOAWAY. close() ends them all: one it missed would keep the process alive.
   */
  private readonly links = new Set<Link>();
  /** Wakes requests waiting out a throttle, so that close() does not leave their timers running. */
  private readonly throttleWaits = new Set<() => void>();
  /** Requests awaiting their answer, by correlation id (a Map here made garbage per request). */
  private readonly pending = new CorrelationTable<PendingRequest>();
  private nextCorrelationId = 1;
  private brokerIndex = 0;
  private throttleUntil = 0;
  /** Requests on the slow path that have not been sent yet. */
  private waitingRequests = 0;
  /** performance.now() of the last frame sent or received (cheaper than Date.now on every frame). */
  private lastActivity = performance.now();
  private readonly keepalive: NodeJS.Timeout;
  private readonly deadlines: NodeJS.Timeout;
  private corked = false;
  private closed = false;
  /** The limits of the last handshake: still known while a new connection is being opened. */
  private lastHandshake: HandshakeResponse | null = null;

  private readonly tls: ClientTlsOptions | null;
  private readonly sasl: SaslOptions | null;

  constructor(options: TcpTransportOptions) {
    if (options.brokers.length === 0)
      throw errorOf('INVALID_CONFIG', 'at least one broker address is needed');
    this.tls = options.tls ?? null;
    this.sasl = options.sasl ?? null;
    this.options = {
      brokers: options.brokers,
      clientId: options.clientId ?? 'memorystreamer-client',
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      keepaliveMs: options.keepaliveMs ?? 30_000,
      maxPayloadBytes: options.maxPayloadBytes ?? 256 * 1024 * 1024,
      tls: options.tls ?? {},
    };
    this.keepalive = setInterval(() => this.ping(), this.options.keepaliveMs);
    this.keepalive.unref();
    // One timer checks every request's deadline, instead of a timer per request.
    this.deadlines = setInterval(() => this.expire(), DEADLINE_CHECK_MS);
    this.deadlines.unref();
  }

  /** Connects (trying each broker in turn) unless a live connection exists. */
  connect(): Promise<Link> {
    if (this.closed) return Promise.reject(errorOf('CONNECTION_CLOSED', 'transport is closed'));
    if (this.link !== null && !this.link.closed) return Promise.resolve(this.link);
    this.connecting ??= this.openLink().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  private async openLink(): Promise<Link> {
    let lastError: unknown = null;
    for (let i = 0; i < this.options.brokers.length; i++) {
      this.throwIfClosed();
      const address = this.options.brokers[(this.brokerIndex + i) % this.options.brokers.length]!;
      let link: Link;
      try {
        link = await this.dial(address);
      } catch (error) {
        // close() cut the dial short: not a broker that is away, and no other one is tried.
        this.throwIfClosed();
        // Refused credentials are not a broker that is away: said as they are, not retried elsewhere.
        if (isAuthenticationError(error)) throw error;
        lastError = error;
        continue;
      }
      if (this.closed) {
        // close() came after the dial settled (it fails the dials it sees): the connection is
        // not handed out, and would otherwise outlive the transport.
        this.failLink(link, errorOf('CONNECTION_CLOSED', 'client closed'));
        throw errorOf('CONNECTION_CLOSED', 'transport is closed');
      }
      this.brokerIndex = (this.brokerIndex + i) % this.options.brokers.length;
      this.link = link;
      return link;
    }
    // A TLS mismatch is a setting to change, not an outage to wait out: said with its own code.
    const tlsError = tlsFailure(lastError, 'the broker');
    if (tlsError !== null) throw tlsError;
    throw errorOf(
      'BROKER_NOT_AVAILABLE',
      `no broker reachable (${this.options.brokers.map((b) => `${b.host}:${b.port}`).join(', ')})`,
      {
        cause: lastError,
      },
    );
  }

  private dial(address: BrokerAddress): Promise<Link> {
    return new Promise<Link>((resolve, reject) => {
      const tls = this.tls;
      const where = `${address.host}:${address.port}`;
      const socket =
        tls === null
          ? netConnect({ host: address.host, port: address.port, noDelay: true })
          : tlsConnect({
              host: address.host,
              port: address.port,
              // An IP address is not a valid SNI name; the certificate is still checked against it.
              servername: tls.servername ?? (isIP(address.host) === 0 ? address.host : ''),
              ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
              ...(tls.cert !== undefined ? { cert: tls.cert } : {}),
              ...(tls.key !== undefined ? { key: tls.key } : {}),
            });
      if (tls !== null) socket.setNoDelay(true);
      const link = new Link(socket, this.options.maxPayloadBytes);
      this.links.add(link);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(errorOf('REQUEST_TIMEOUT', `connecting to ${address.host}:${address.port}`));
      }, this.options.connectTimeoutMs);
      const fail = (error: Error) => {
        clearTimeout(timer);
        reject(tls === null ? error : (tlsFailure(error, where) ?? error));
      };
      socket.once('error', fail);
      socket.on('data', (chunk: Buffer) => this.onData(link, chunk));
      let secured = false;
      // A broker that requires client certificates and refuses this one may close the connection
      // right after the TLS handshake, before its alert reaches this side: said as what it is.
      socket.on('close', () => {
        this.onClose(link, secured && link.handshake === null ? closedAfterTls(where) : undefined);
        // Closed before the handshake was sent (close() destroys a socket still connecting, with
        // no error): nothing else would settle the dial until its timer (a no-op once settled).
        fail(errorOf('CONNECTION_CLOSED', `connection to ${where} closed while connecting`));
      });
      socket.once(tls === null ? 'connect' : 'secureConnect', () => {
        secured = tls !== null;
        socket.off('error', fail);
        // A broker that refuses this side's certificate says so after the handshake (TLS 1.3).
        socket.on('error', (error) => {
          const refused = tls === null ? null : tlsFailure(error, where);
          if (refused !== null) this.onClose(link, refused);
        });
        const correlationId = this.nextCorrelationId++;
        const writer = new BinaryWriter(64);
        handshakeCommand.encodeRequest(writer, {
          minVersion: MIN_PROTOCOL_VERSION,
          maxVersion: MAX_PROTOCOL_VERSION,
          features: ALL_FEATURES,
          clientId: this.options.clientId,
        });
        this.pending.set(correlationId, {
          link,
          decode: (payload) => handshakeCommand.decodeResponse(new BinaryReader(payload)),
          resolve: (value) => {
            link.handshake = value as HandshakeResponse;
            this.lastHandshake = link.handshake;
            if (this.sasl === null) {
              clearTimeout(timer);
              resolve(link);
              return;
            }
            // The link is handed out only once authenticated: nothing else can be sent before.
            authenticateOnLink(this.sasl, (codec, request) =>
              this.exchange(link, codec, request, performance.now() + this.options.connectTimeoutMs),
            ).then(
              () => {
                clearTimeout(timer);
                resolve(link);
              },
              (error: Error) => {
                socket.destroy();
                fail(error);
              },
            );
          },
          reject: (error) => {
            socket.destroy();
            fail(error);
          },
          deadline: performance.now() + this.options.connectTimeoutMs,
          what: 'handshake',
          timeoutMs: this.options.connectTimeoutMs,
        });
        socket.write(encodeFrame({ opcode: Opcode.HANDSHAKE, correlationId }, writer.finish()));
      });
    });
  }

  /** One request on a link not handed out yet (authentication), with the connect deadline. */
  private exchange<Request, Response>(
    link: Link,
    codec: CommandCodec<Request, Response>,
    request: Request,
    deadline: number,
  ): Promise<Response> {
    const writer = new BinaryWriter(128);
    codec.encodeRequest(writer, request);
    const correlationId = this.nextCorrelationId++;
    return new Promise<Response>((resolve, reject) => {
      // Closed during an await of the authentication (a token callback, say): its answer would
      // never come, and after close() no deadline would end the wait.
      if (link.closed) {
        reject(errorOf('CONNECTION_CLOSED', 'connection closed during authentication'));
        return;
      }
      this.pending.set(correlationId, {
        link,
        decode: (payload) => codec.decodeResponse(new BinaryReader(payload)),
        resolve: resolve as (value: unknown) => void,
        reject,
        deadline,
        what: 'authentication',
        timeoutMs: this.options.connectTimeoutMs,
      });
      link.socket.write(encodeFrame({ opcode: codec.opcode, correlationId }, writer.finish()));
    });
  }

  private onData(link: Link, chunk: Buffer): void {
    this.lastActivity = performance.now();
    link.decoder.push(chunk);
    for (;;) {
      let frame: Frame | null;
      try {
        frame = link.decoder.next();
      } catch (error) {
        this.failLink(link, error as Error);
        return;
      }
      if (frame === null) return;
      this.onFrame(link, frame);
    }
  }

  private onFrame(link: Link, frame: Frame): void {
    const { header } = frame;
    if (!frame.payloadCrcValid) {
      this.failLink(link, errorOf('BAD_PAYLOAD_CRC', 'from the broker'));
      return;
    }
    if (header.flags & FrameFlags.PUSH) {
      this.onPush(link, frame);
      return;
    }
    const pending = this.pending.get(header.correlationId);
    if (pending === undefined) {
      // A connection-level error (correlation 0), e.g. before the broker closes it.
      if (header.flags & FrameFlags.ERROR)
        this.failLink(link, errorFromWire(header.errorCode, decodeErrorPayload(frame.payload)));
      return;
    }
    this.pending.delete(header.correlationId);
    if (header.flags & FrameFlags.ERROR) {
      pending.reject(errorFromWire(header.errorCode, decodeErrorPayload(frame.payload)));
      return;
    }
    try {
      pending.resolve(pending.decode(frame.payload));
    } catch (error) {
      pending.reject(error as Error);
    }
  }

  private onPush(link: Link, frame: Frame): void {
    const { header } = frame;
    switch (header.opcode) {
      case Opcode.PUSH_BATCH: {
        const handlers = link.channels.get(header.channelId);
        if (handlers === undefined) return;
        if (header.flags & FrameFlags.ERROR) {
          link.channels.delete(header.channelId);
          handlers.onError(errorFromWire(header.errorCode, decodeErrorPayload(frame.payload)));
          return;
        }
        if (frame.payload.length < 8) return;
        handlers.onBatches([frame.payload.subarray(8)], frame.payload.readBigInt64LE(0));
        return;
      }
      case Opcode.THROTTLE: {
        const throttleMs = frame.payload.length >= 4 ? frame.payload.readUInt32LE(0) : 10;
        this.throttleUntil = Date.now() + throttleMs;
        return;
      }
      case Opcode.GOAWAY:
        // Finish what is in flight on this connection; new requests open a new one.
        link.closed = true;
        if (this.link === link) this.link = null;
        return;
    }
  }

  private failLink(link: Link, error: Error): void {
    link.socket.destroy();
    this.onClose(link, error);
  }

  private onClose(link: Link, cause?: Error): void {
    link.closed = true;
    this.links.delete(link);
    if (this.link === link) this.link = null;
    const error = errorOf('CONNECTION_CLOSED', cause?.message ?? 'connection to the broker closed', {
      cause,
    });
    this.pending.forEach((pending, id) => {
      if (pending.link !== link) return;
      this.pending.delete(id);
      pending.reject(error);
    });
    for (const [id, handlers] of link.channels) {
      link.channels.delete(id);
      handlers.onError(error);
    }
  }

  private send(link: Link, frame: Buffer | Buffer[]): void {
    this.lastActivity = performance.now();
    if (!this.corked) {
      // Coalesce every frame sent in this event-loop turn into one write.
      this.corked = true;
      link.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        link.socket.uncork();
      });
    }
    if (Array.isArray(frame)) for (const part of frame) link.socket.write(part);
    else link.socket.write(frame);
  }

  maxRequestPayloadBytes(name: ClientCommand): number | undefined {
    const handshake = this.link?.handshake ?? this.lastHandshake;
    if (handshake === null) return undefined;
    return isDataOpcode(COMMANDS[name].opcode) ? handshake.maxPayloadBytes : handshake.maxControlPayloadBytes;
  }

  /**
   * Refuses a request larger than the broker takes. Sent, it would not fail alone: the broker reads
   * the declared length first and closes the whole connection (FRAME_TOO_LARGE), failing every
   * request in flight on it. Produce gets the code a too-large message has (MESSAGE_TOO_LARGE).
   */
  private checkPayloadSize(link: Link, name: string, opcode: number, payloadBytes: number): void {
    const handshake = link.handshake;
    if (handshake === null) return;
    const data = isDataOpcode(opcode);
    const limit = data ? handshake.maxPayloadBytes : handshake.maxControlPayloadBytes;
    if (payloadBytes <= limit) return;
    const setting = data ? 'server.max_payload_bytes' : 'server.max_control_payload_bytes';
    if (name === 'produce') {
      throw errorOf(
        'MESSAGE_TOO_LARGE',
        `a produce request of ${payloadBytes} bytes; the broker accepts at most ${limit} bytes per request (${setting}), so it was not sent`,
      );
    }
    throw errorOf(
      'REQUEST_TOO_LARGE',
      `${name}: ${payloadBytes} bytes, the broker's limit is ${limit} (${setting})`,
    );
  }

  request<K extends ClientCommand>(
    name: K,
    request: RequestOf<K>,
    options: RequestOptions,
  ): Promise<ResponseOf<K>> {
    // Fast path, the common case: a live connection and no throttle in force. The frame is sent
    // now, with no await before it (each would cost a microtask turn per request).
    // While any request waits on the slow path (connecting, throttled), later ones queue behind it:
    // requests leave in call order (the producer's sequence numbers depend on it).
    const link = this.link;
    if (
      link !== null &&
      !link.closed &&
      !this.closed &&
      this.throttleUntil === 0 &&
      this.waitingRequests === 0
    ) {
      try {
        return this.sendRequest(link, name, request, options);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return this.requestSlow(name, request, options);
  }

  private async requestSlow<K extends ClientCommand>(
    name: K,
    request: RequestOf<K>,
    options: RequestOptions,
  ): Promise<ResponseOf<K>> {
    this.waitingRequests++;
    let link: Link;
    try {
      link = await this.connect();
      const wait = this.throttleUntil - Date.now();
      if (wait > 0) await this.throttleWait(wait);
      else this.throttleUntil = 0;
      // Closed meanwhile: sent now, the request would go out on a connection close() ended (or
      // missed), with no deadline enforced any more.
      this.throwIfClosed();
    } finally {
      this.waitingRequests--;
    }
    return this.sendRequest(link, name, request, options);
  }

  /** Sleeps `ms` for a throttle, or until close(). */
  private throttleWait(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.throttleWaits.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.throttleWaits.add(wake);
    });
  }

  /** After close() nothing is sent: no deadline would end the wait for an answer. */
  private throwIfClosed(): void {
    if (this.closed) throw errorOf('CONNECTION_CLOSED', 'transport is closed');
  }

  private sendRequest<K extends ClientCommand>(
    link: Link,
    name: K,
    request: RequestOf<K>,
    options: RequestOptions,
  ): Promise<ResponseOf<K>> {
    const codec = COMMANDS[name];
    const writer = new BinaryWriter(name === 'produce' ? 64 : 128);
    let batch: Buffer | null = null;
    if (name === 'produce') {
      // Everything but the batch, then the batch itself as a second buffer (no copy).
      const produce = request as RequestOf<'produce'>;
      batch = produce.batch;
      codec.encodeRequest(writer, { ...produce, batch: EMPTY } as never);
    } else {
      codec.encodeRequest(writer, request as never);
    }
    const prefix = writer.finish();
    this.checkPayloadSize(link, name, codec.opcode, prefix.length + (batch === null ? 0 : batch.length));
    const correlationId = this.nextCorrelationId;
    this.nextCorrelationId = this.nextCorrelationId >= 0xffffffff ? 1 : this.nextCorrelationId + 1;
    return new Promise<ResponseOf<K>>((resolve, reject) => {
      this.pending.set(correlationId, {
        link,
        decode: decoderOf(name),
        resolve: resolve as (value: unknown) => void,
        reject,
        deadline: performance.now() + options.timeoutMs,
        what: name,
        timeoutMs: options.timeoutMs,
      });
      if (batch === null) {
        this.send(link, encodeFrame({ opcode: codec.opcode, correlationId }, prefix));
      } else {
        const head = Buffer.allocUnsafe(FRAME_HEADER_SIZE + prefix.length);
        prefix.copy(head, FRAME_HEADER_SIZE);
        writeFrameHeader(
          head,
          0,
          { opcode: codec.opcode, correlationId },
          prefix.length + batch.length,
          crc32c(batch, crc32c(prefix)),
        );
        this.send(link, [head, batch]);
      }
    });
  }

  /**
   * Sends a request of a command outside the client's registry (broker-to-broker commands such as
   * replica fetch) with its own codec: the same connection, correlation and deadlines as `request`.
   */
  async call<Request, Response>(
    command: CommandCodec<Request, Response>,
    request: Request,
    options: RequestOptions,
  ): Promise<Response> {
    const link = await this.connect();
    this.throwIfClosed();
    const writer = new BinaryWriter(128);
    command.encodeRequest(writer, request);
    const payload = writer.finish();
    this.checkPayloadSize(link, `0x${command.opcode.toString(16)}`, command.opcode, payload.length);
    const correlationId = this.nextCorrelationId;
    this.nextCorrelationId = this.nextCorrelationId >= 0xffffffff ? 1 : this.nextCorrelationId + 1;
    return new Promise<Response>((resolve, reject) => {
      this.pending.set(correlationId, {
        link,
        decode: (bytes) => command.decodeResponse(new BinaryReader(bytes)),
        resolve: resolve as (value: unknown) => void,
        reject,
        deadline: performance.now() + options.timeoutMs,
        what: `0x${command.opcode.toString(16)}`,
        timeoutMs: options.timeoutMs,
      });
      this.send(link, encodeFrame({ opcode: command.opcode, correlationId }, payload));
    });
  }

  async subscribe(
    request: SubscribeRequest,
    handlers: PushHandlers,
    options: RequestOptions,
  ): Promise<RemoteSubscription> {
    const link = await this.connect();
    this.throwIfClosed();
    const writer = new BinaryWriter(64);
    COMMANDS.subscribe.encodeRequest(writer, request);
    const payload = writer.finish();
    this.checkPayloadSize(link, 'subscribe', Opcode.SUBSCRIBE, payload.length);
    const correlationId = this.nextCorrelationId++;
    const response = await new Promise<ResponseOf<'subscribe'>>((resolve, reject) => {
      this.pending.set(correlationId, {
        link,
        decode: (payload) => {
          const decoded = COMMANDS.subscribe.decodeResponse(new BinaryReader(payload));
          // Register before any push for the channel can be parsed.
          link.channels.set(decoded.channelId, handlers);
          return decoded;
        },
        resolve: resolve as (value: unknown) => void,
        reject,
        deadline: performance.now() + options.timeoutMs,
        what: 'subscribe',
        timeoutMs: options.timeoutMs,
      });
      this.send(link, encodeFrame({ opcode: Opcode.SUBSCRIBE, correlationId }, payload));
    });
    const channelId = response.channelId;
    // Closed between the answer and here: close() has already told the handlers (the channel was
    // registered); a subscription on the ended connection would be one nothing can use.
    this.throwIfClosed();
    return {
      offset: response.offset,
      grant: (bytes) => {
        if (link.closed || !link.channels.has(channelId)) return;
        this.send(
          link,
          encodeFrame({ opcode: Opcode.CREDIT, channelId, correlationId: 0 }, encodeCredit(bytes)),
        );
      },
      close: async () => {
        if (!link.channels.delete(channelId) || link.closed) return;
        const unsubscribe = new BinaryWriter(8);
        COMMANDS.unsubscribe.encodeRequest(unsubscribe, { channelId });
        this.send(
          link,
          encodeFrame(
            { opcode: Opcode.UNSUBSCRIBE, correlationId: this.nextCorrelationId++ },
            unsubscribe.finish(),
          ),
        );
      },
    };
  }

  private expire(): void {
    const now = performance.now();
    this.pending.forEach((pending, id) => {
      if (pending.deadline > now) return;
      this.pending.delete(id);
      pending.reject(errorOf('REQUEST_TIMEOUT', `${pending.what} after ${pending.timeoutMs} ms`));
    });
  }

  private ping(): void {
    const link = this.link;
    if (link === null || link.closed || performance.now() - this.lastActivity < this.options.keepaliveMs / 2)
      return;
    this.request('ping', {}, { timeoutMs: this.options.keepaliveMs }).catch((error: unknown) => {
      if (error instanceof MemoryStreamerError && error.codeName === 'REQUEST_TIMEOUT')
        this.failLink(link, error);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.keepalive);
    clearInterval(this.deadlines);
    this.link = null;
    // Every connection, not only the current one: one being dialled (its dial fails, openLink
    // does not hand it out) and ones draining after GOAWAY would otherwise stay open.
    const error = errorOf('CONNECTION_CLOSED', 'client closed');
    for (const link of [...this.links]) {
      link.socket.end();
      this.onClose(link, error);
      link.socket.destroy();
    }
    for (const wake of [...this.throttleWaits]) wake();
    // The deadline timer is stopped: whatever still waits for an answer would wait forever.
    this.pending.forEach((pending, id) => {
      this.pending.delete(id);
      pending.reject(error);
    });
  }
}

const EMPTY = Buffer.alloc(0);
/** Granularity of request timeouts. */
const DEADLINE_CHECK_MS = 50;
