// A bare connection for attackers: writes whatever frames it is given, decodes what comes back with
// the project's frame decoder when it reads at all, and remembers how the broker ended it.

import { connect, type Socket } from 'node:net';
import { type Frame, FrameDecoder } from '../../src/protocol/frame-decoder.js';
import { FrameFlags } from '../../src/protocol/frame-header.js';
import { Opcode } from '../../src/protocol/opcodes.js';
import { handshakeFrame } from './frames.js';

export interface OpenOptions {
  port: number;
  host?: string;
  /** Source address (127.0.0.x) so floods can come from several client addresses. */
  localAddress?: string;
  timeoutMs?: number;
}

export class RawConnection {
  readonly socket: Socket;
  /** Frames received (only counted; `onFrame` sees them). */
  framesIn = 0;
  /** Error codes received, by code. */
  readonly errorCodes = new Map<number, number>();
  /** The code of the last error frame, the broker's reason when it then closes. */
  lastErrorCode = 0;
  closed = false;
  closedAt = 0;
  onFrame: ((frame: Frame) => void) | null = null;
  private readonly decoder = new FrameDecoder({
    maxPayloadBytes: 1 << 30,
    maxControlPayloadBytes: 1 << 30,
  });
  private readonly closeWaiters: Array<() => void> = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.decoder.push(chunk);
      try {
        for (let f = this.decoder.next(); f !== null; f = this.decoder.next()) this.onFrameIn(f);
      } catch {
        socket.destroy();
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.closedAt = performance.now();
      for (const wake of this.closeWaiters.splice(0)) wake();
    });
  }

  static open(options: OpenOptions): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({
        host: options.host ?? '127.0.0.1',
        port: options.port,
        noDelay: true,
        ...(options.localAddress !== undefined ? { localAddress: options.localAddress } : {}),
      });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error('ETIMEDOUT'));
      }, options.timeoutMs ?? 5000);
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(new RawConnection(socket));
      });
    });
  }

  private onFrameIn(frame: Frame): void {
    this.framesIn++;
    if (frame.header.flags & FrameFlags.ERROR) {
      const code = frame.header.errorCode;
      this.lastErrorCode = code;
      this.errorCodes.set(code, (this.errorCodes.get(code) ?? 0) + 1);
    }
    this.onFrame?.(frame);
  }

  /** Sends the handshake and waits for its answer: true when accepted, false when refused or closed. */
  handshake(timeoutMs = 5000, clientId?: string): Promise<boolean> {
    return new Promise((resolve) => {
      const previous = this.onFrame;
      const timer = setTimeout(() => finish(false), timeoutMs);
      const finish = (ok: boolean) => {
        clearTimeout(timer);
        this.onFrame = previous;
        resolve(ok);
      };
      this.onFrame = (frame) => {
        if (frame.header.opcode === Opcode.HANDSHAKE && frame.header.correlationId === 1) {
          finish((frame.header.flags & FrameFlags.ERROR) === 0);
        } else if (frame.header.flags & FrameFlags.ERROR) {
          finish(false);
        }
      };
      this.closeWaiters.push(() => finish(false));
      this.write(handshakeFrame(1, clientId));
    });
  }

  write(bytes: Buffer): boolean {
    if (this.closed || this.socket.destroyed) return false;
    return this.socket.write(bytes);
  }

  /** Resolves once the socket is closed, or after `timeoutMs` (then false). */
  waitClosed(timeoutMs: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.closeWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** Stops reading: the kernel's buffers fill and the broker sees a client that does not read. */
  stopReading(): void {
    this.socket.pause();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Opens `count` connections a few at a time; failures are counted by error code, not thrown. */
export async function openMany(
  count: number,
  options: OpenOptions,
  each: (connection: RawConnection, index: number) => Promise<void> | void,
  concurrency = 32,
): Promise<{ opened: RawConnection[]; failures: Map<string, number> }> {
  const opened: RawConnection[] = [];
  const failures = new Map<string, number>();
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const index = next++;
      try {
        const connection = await RawConnection.open(options);
        opened.push(connection);
        await each(connection, index);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
        failures.set(code, (failures.get(code) ?? 0) + 1);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { opened, failures };
}
