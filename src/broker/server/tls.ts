// TLS for the client listener. The listener accepts plain TCP first and applies its connection
// caps (total, per address, shutdown) before any TLS work, so a flood of connections costs no
// handshakes; an admitted socket is then handed to one TLS server (never listening itself), which
// runs the handshake within the broker's handshake timeout. With client authentication the peer's
// certificate must be signed by `ca`; the check is tls.Server's own (`authorized`).

import type { Socket } from 'node:net';
import { createSecureContext, createServer, type SecureContextOptions, type TLSSocket } from 'node:tls';
import { errorOf } from '../../protocol/error-codes.js';

export type TlsClientAuth = 'none' | 'request' | 'require';

export interface ServerTlsOptions {
  /** PEM certificate chain of the broker. */
  readonly cert: string | Buffer;
  /** PEM private key of the certificate. */
  readonly key: string | Buffer;
  /** PEM CA certificates that client certificates are checked against (client authentication). */
  readonly ca?: string | Buffer;
  /** `require`: clients without a certificate signed by `ca` are refused; `request`: asked, not required. */
  readonly clientAuth?: TlsClientAuth;
}

export interface ServerTls {
  readonly clientAuth: TlsClientAuth;
  /**
   * Runs the TLS handshake on an admitted socket. Exactly one of the callbacks runs: `secured` with
   * the TLS socket once the handshake is done (and the peer verified when required), or `failed`
   * when it fails, times out, or the peer leaves first.
   */
  handshake(socket: Socket, secured: (socket: TLSSocket) => void, failed: () => void): void;
  /** Ends every handshake in progress (the broker is stopping). */
  abortHandshakes(): void;
}

interface Pending {
  readonly socket: Socket;
  readonly secured: (socket: TLSSocket) => void;
  readonly failed: () => void;
  readonly timer: NodeJS.Timeout;
}

/** Checks the certificate, key and CA (INVALID_CONFIG when they do not load). */
function checkSecureContext(options: SecureContextOptions): void {
  try {
    createSecureContext(options);
  } catch (error) {
    throw errorOf('INVALID_CONFIG', `TLS certificate or key: ${(error as Error).message}`, { cause: error });
  }
}

export function serverTls(options: ServerTlsOptions, handshakeTimeoutMs = 10_000): ServerTls {
  const clientAuth = options.clientAuth ?? 'none';
  if (clientAuth !== 'none' && options.ca === undefined)
    throw errorOf(
      'INVALID_CONFIG',
      `TLS client authentication "${clientAuth}" needs the CA that signs client certificates`,
    );
  const contextOptions: SecureContextOptions = {
    cert: options.cert,
    key: options.key,
    ...(options.ca !== undefined ? { ca: options.ca } : {}),
    minVersion: 'TLSv1.2',
  };
  checkSecureContext(contextOptions);
  // Handshakes in progress by the peer's address and port (unique among live connections).
  const pending = new Map<string, Pending>();
  const settle = (key: string): Pending | undefined => {
    const entry = pending.get(key);
    if (entry === undefined) return undefined;
    pending.delete(key);
    clearTimeout(entry.timer);
    return entry;
  };
  const keyOf = (socket: Socket) => `${socket.remoteAddress}|${socket.remotePort}`;
  const server = createServer({
    ...contextOptions,
    requestCert: clientAuth !== 'none',
    // Verified below, so that a refused peer settles its handshake like any other failure.
    rejectUnauthorized: false,
    handshakeTimeout: handshakeTimeoutMs,
  });
  server.on('secureConnection', (secure: TLSSocket) => {
    const entry = settle(keyOf(secure));
    if (entry === undefined || (clientAuth === 'require' && !secure.authorized)) {
      secure.destroy();
      entry?.failed();
      return;
    }
    entry.secured(secure);
  });
  server.on('tlsClientError', (_error: Error, secure: TLSSocket) => {
    secure.destroy();
    settle(keyOf(secure))?.failed();
  });
  return {
    clientAuth,
    handshake(socket, secured, failed) {
      const key = keyOf(socket);
      if (socket.remoteAddress === undefined || pending.has(key)) {
        socket.destroy();
        failed();
        return;
      }
      // Whatever happens to the handshake, the socket and its place are released by then.
      const timer = setTimeout(() => {
        settle(key)?.failed();
        socket.destroy();
      }, handshakeTimeoutMs + 1000);
      timer.unref();
      pending.set(key, { socket, secured, failed, timer });
      // A peer that leaves during the handshake: its place is freed at once.
      socket.once('close', () => settle(key)?.failed());
      server.emit('connection', socket);
    },
    abortHandshakes() {
      for (const key of [...pending.keys()]) {
        const entry = settle(key);
        entry?.socket.destroy();
        entry?.failed();
      }
    },
  };
}
