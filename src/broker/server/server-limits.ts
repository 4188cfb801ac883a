// Limits of the TCP server, with defaults. Every one of them bounds what a peer can make the broker
// hold or do; docs/server.md explains each.

export interface ServerLimits {
  maxConnections: number;
  maxConnectionsPerAddress: number;
  /** A connection that has not completed its handshake by then is closed. */
  handshakeTimeoutMs: number;
  /** A connection that sends nothing for this long is closed (clients ping to stay open). */
  idleTimeoutMs: number;
  /** Largest data-frame payload (produce, fetch); checked from the header before allocating. */
  maxPayloadBytes: number;
  /** Largest control-frame payload. */
  maxControlPayloadBytes: number;
  /** Bytes one connection may hold in undecoded input and requests in flight before reading pauses. */
  connectionBudgetBytes: number;
  /** The same, summed over all connections. */
  globalBudgetBytes: number;
  /** Bytes queued towards a client that does not read; past this the connection is cut. */
  maxOutboundBytes: number;
  maxInFlightRequests: number;
}

export const DEFAULT_SERVER_LIMITS: ServerLimits = {
  maxConnections: 20_000,
  maxConnectionsPerAddress: 10_000,
  handshakeTimeoutMs: 10_000,
  idleTimeoutMs: 300_000,
  maxPayloadBytes: 8 * 1024 * 1024,
  maxControlPayloadBytes: 64 * 1024,
  connectionBudgetBytes: 32 * 1024 * 1024,
  globalBudgetBytes: 512 * 1024 * 1024,
  maxOutboundBytes: 64 * 1024 * 1024,
  maxInFlightRequests: 4096,
};
