// Limits of the TCP server, with defaults. Every one of them bounds what a peer can make the broker
// hold or do, whatever the peer declares; docs/server.md explains each and what a client gets when
// it hits it.

export interface ServerLimits {
  maxConnections: number;
  maxConnectionsPerAddress: number;
  /** A connection that has not completed its handshake by then is closed. */
  handshakeTimeoutMs: number;
  /** A connection that sends nothing for this long is closed (clients ping to stay open). */
  idleTimeoutMs: number;
  /** A frame whose first bytes arrived must arrive whole within this, else FRAME_TIMEOUT and close. */
  frameTimeoutMs: number;
  /**
   * A connection with bytes waiting towards it that takes none of them for this long is cut
   * (CLIENT_NOT_READING). While the global budget is exhausted, a second is enough.
   */
  writeStallTimeoutMs: number;
  /** Largest data-frame payload (produce, fetch); checked from the header before allocating. */
  maxPayloadBytes: number;
  /** Largest control-frame payload. */
  maxControlPayloadBytes: number;
  /**
   * Bytes one connection may hold — frames arriving, requests in flight, fetch reservations,
   * responses and pushes queued towards it — before reading pauses (and pushes wait).
   */
  connectionBudgetBytes: number;
  /** The same, summed over all connections. */
  globalBudgetBytes: number;
  /** Bytes queued towards a client that does not read; past this the connection is cut. */
  maxOutboundBytes: number;
  maxInFlightRequests: number;
  /** A fetch's maxBytes is clamped to this; the clamped size is reserved before the fetch runs. */
  maxFetchBytes: number;
  /** Credit a subscription may hold at once, whatever the client grants. */
  maxSubscriptionCreditBytes: number;
}

const MiB = 1024 * 1024;

export const DEFAULT_SERVER_LIMITS: ServerLimits = {
  maxConnections: 20_000,
  maxConnectionsPerAddress: 1024,
  handshakeTimeoutMs: 10_000,
  idleTimeoutMs: 300_000,
  frameTimeoutMs: 30_000,
  writeStallTimeoutMs: 60_000,
  maxPayloadBytes: 8 * MiB,
  maxControlPayloadBytes: 64 * 1024,
  connectionBudgetBytes: 32 * MiB,
  globalBudgetBytes: 512 * MiB,
  maxOutboundBytes: 64 * MiB,
  maxInFlightRequests: 256,
  maxFetchBytes: 8 * MiB,
  maxSubscriptionCreditBytes: 16 * MiB,
};

/**
 * While the global budget is exhausted and connections wait for it: how long a client may leave
 * bytes waiting towards it untaken, or stay silent in the middle of a frame.
 */
export const PRESSURE_STALL_MS = 1000;
