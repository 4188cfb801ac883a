// TLS for the client listener. The listener accepts plain TCP first and applies its connection
// caps (total, per address, shutdown) before any TLS work, so a flood of connections costs no
// handshakes; an admitted socket is then handed to one TLS server (never listening itself), which
// runs the handshake within the broker's handshake timeout. With client authentication the peer's
// certificate must be signed by `ca`; the check is tls.Server's own (`authorized`).
//
// A plain-TCP client is told so: the first byte of a TLS connection is a handshake record (0x16),
// the first of a plain client's frame is the magic 'M', so a socket that starts otherwise gets one
// TLS_REQUIRED error frame it can read, and is closed. Certificates are replaced in place
// (`reload`, tls.Server's setSecureContext): new handshakes use the new ones, connections already
// open keep theirs.

import type { Socket } from 'node:net';
import { createSecureContext, createServer, type SecureContextOptions, type TLSSocket } from 'node:tls';
import { encodeErrorPayload } from '../../protocol/commands/control.js';
import { ERROR_TABLE, errorOf } from '../../protocol/error-codes.js';
import { encodeFrame, FrameFlags } from '../../protocol/frame-header.js';

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
  /**
   * Takes a new certificate, key and CA for the handshakes from now on (INVALID_CONFIG when they
   * do not load; the running ones stay). Client authentication is kept as it was started.
   */
  reload(options: ServerTlsOptions): void;
  /** The certificate, key and CA in use (the last loaded). */
  readonly options: ServerTlsOptions;
}

/** First byte of a TLS record that carries a handshake message (a ClientHello opens with one). */
const TLS_HANDSHAKE_RECORD = 0x16;

/** One TLS_REQUIRED error frame, readable by a client that speaks the protocol in plain TCP. */
function refusePlain(socket: Socket): void {
  socket.on('error', () => undefined);
  socket.end(
    encodeFrame(
      { opcode: 0, flags: FrameFlags.RESPONSE | FrameFlags.ERROR, errorCode: ERROR_TABLE.TLS_REQUIRED.code },
      encodeErrorPayload(
        `${ERROR_TABLE.TLS_REQUIRED.message}: use the client's tls option, a memorystreamer+tls://host:port address, or the CLI's --tls / --tls-ca`,
      ),
    ),
    () => socket.destroy(),
  );
  // Whatever the peer does, the descriptor goes within a second.
  setTimeout(() => socket.destroy(), 1000).unref();
}

interface Pending {
  readonly socket: Socket;
  readonly secured: (socket: TLSSocket) => void;
  readonly failed: () => void;
  readonly timer: NodeJS.Timeout;
}

/** The context options of a certificate, key and CA: TLS 1.2 at least. */
export function secureContextOptions(options: ServerTlsOptions): SecureContextOptions {
  return {
    cert: options.cert,
    key: options.key,
    ...(options.ca !== undefined ? { ca: options.ca } : {}),
    minVersion: 'TLSv1.2',
  };
}

/** Checks the certificate, key and CA (INVALID_CONFIG when they do not load). */
export function checkSecureContext(options: SecureContextOptions): void {
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
  const contextOptions = secureContextOptions(options);
  checkSecureContext(contextOptions);
  let current = options;
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
    // Required: OpenSSL refuses the handshake with an alert the client can name (certificate
    // required, unknown CA). Requested: any certificate or none is let in, and checked below.
    rejectUnauthorized: clientAuth === 'require',
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
      socket.once('data', (first: Buffer) => {
        socket.pause();
        if (first[0] !== TLS_HANDSHAKE_RECORD) {
          settle(key)?.failed();
          refusePlain(socket);
          return;
        }
        // The TLS socket reads what was unshifted before the rest (node:tls initRead).
        socket.unshift(first);
        server.emit('connection', socket);
      });
    },
    get options() {
      return current;
    },
    reload(next) {
      if (clientAuth !== 'none' && next.ca === undefined)
        throw errorOf('INVALID_CONFIG', `TLS client authentication "${clientAuth}" needs the CA`);
      const nextContext = secureContextOptions(next);
      checkSecureContext(nextContext);
      server.setSecureContext(nextContext);
      current = { ...next, clientAuth };
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
