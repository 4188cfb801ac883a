// What a client needs from a connection to a broker: typed request/response calls and push
// subscriptions with credit. Two implementations: TCP (tcp-transport.ts) and in-process
// (src/embedded/in-process-transport.ts), so producers, consumers and admin are written once.

import type { SubscribeRequest } from '../protocol/commands/data-types.js';
import type { CommandName, RequestOf, ResponseOf } from '../protocol/commands/registry.js';

export type ClientCommand = Exclude<CommandName, 'subscribe' | 'unsubscribe'>;

export interface RequestOptions {
  /** The call fails with REQUEST_TIMEOUT after this long. */
  timeoutMs: number;
}

export interface PushHandlers {
  /** Whole record batches (one or more per chunk), and the partition's high watermark after them. */
  onBatches(chunks: readonly Buffer[], highWatermark: bigint): void;
  /** The subscription ended: retention passed it, the topic went away, or the connection broke. */
  onError(error: Error): void;
}

export interface RemoteSubscription {
  /** The offset the subscription started at (latest/earliest resolved). */
  readonly offset: bigint;
  /** Lets the broker push `bytes` more. */
  grant(bytes: number): void;
  close(): Promise<void>;
}

export interface Transport {
  request<K extends ClientCommand>(
    name: K,
    request: RequestOf<K>,
    options: RequestOptions,
  ): Promise<ResponseOf<K>>;
  subscribe(
    request: SubscribeRequest,
    handlers: PushHandlers,
    options: RequestOptions,
  ): Promise<RemoteSubscription>;
  close(): Promise<void>;
  /**
   * The largest payload the broker accepts in one request of `name` (learnt in the handshake), or
   * undefined while unknown or when nothing limits it (in process). A larger request would not be
   * answered but would close the connection, so the transport refuses it before sending and the
   * producer keeps its batches under it.
   */
  maxRequestPayloadBytes?(name: ClientCommand): number | undefined;
}
