// A bare socket that speaks frames, for testing what the server does with good and bad input.
import { connect, type Socket } from 'node:net';
import { BinaryWriter } from '../../../../src/protocol/codec/binary-writer.js';
import { handshakeCommand } from '../../../../src/protocol/commands/control.js';
import { type Frame, FrameDecoder } from '../../../../src/protocol/frame-decoder.js';
import { encodeFrame } from '../../../../src/protocol/frame-header.js';
import { Opcode } from '../../../../src/protocol/opcodes.js';

export class RawClient {
  readonly frames: Frame[] = [];
  closed = false;
  private readonly decoder = new FrameDecoder({ maxPayloadBytes: 1 << 28, maxControlPayloadBytes: 1 << 28 });
  private waiters: Array<() => void> = [];

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.decoder.push(chunk);
      for (let f = this.decoder.next(); f !== null; f = this.decoder.next()) this.frames.push(f);
      this.notify();
    });
    socket.on('close', () => {
      this.closed = true;
      this.notify();
    });
    socket.on('error', () => undefined);
  }

  static open(port: number, options: { read?: boolean } = {}): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port }, () => resolve(new RawClient(socket)));
      socket.once('error', reject);
      if (options.read === false) socket.pause();
    });
  }

  private notify(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  send(opcode: number, payload: Buffer = Buffer.alloc(0), correlationId = 1, channelId = 0): void {
    this.write(encodeFrame({ opcode, correlationId, channelId }, payload));
  }

  async handshake(version = { min: 1, max: 1 }): Promise<Frame> {
    const writer = new BinaryWriter(64);
    handshakeCommand.encodeRequest(writer, {
      minVersion: version.min,
      maxVersion: version.max,
      features: 0,
      clientId: 'raw',
    });
    this.send(Opcode.HANDSHAKE, writer.finish(), 999);
    return this.waitFor((f) => f.header.correlationId === 999);
  }

  async waitFor(match: (frame: Frame) => boolean, timeoutMs = 5000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.frames.find(match);
      if (found) return found;
      if (this.closed) throw new Error('connection closed before the frame arrived');
      if (Date.now() > deadline) throw new Error('timed out waiting for a frame');
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  async waitClosed(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('connection still open');
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  destroy(): void {
    this.socket.destroy();
  }
}
