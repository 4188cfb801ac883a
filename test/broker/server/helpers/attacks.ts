// Hostile clients on bare sockets, as issue 11 describes them: each opens its connections, sends
// what a misbehaving client sends, and never reads a byte back. Used by the regression tests and by
// measure-attack.ts, which reports the broker's RSS while they run.
import { connect, type Socket } from 'node:net';
import { BinaryWriter } from '../../../../src/protocol/codec/binary-writer.js';
import { handshakeCommand } from '../../../../src/protocol/commands/control.js';
import { COMMANDS } from '../../../../src/protocol/commands/registry.js';
import { encodeFrame } from '../../../../src/protocol/frame-header.js';
import { Opcode } from '../../../../src/protocol/opcodes.js';

export interface Attack {
  sockets: Socket[];
  /** Closes every socket of the attack (the attackers leave). */
  leave(): void;
}

export function openSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => resolve(socket));
    socket.once('error', reject);
    socket.on('error', () => undefined);
    // Never read: what the broker sends piles up in its buffers, then in the kernel's.
    socket.pause();
  });
}

export function handshakeFrame(): Buffer {
  const writer = new BinaryWriter(64);
  handshakeCommand.encodeRequest(writer, { minVersion: 1, maxVersion: 1, features: 0, clientId: 'attacker' });
  return encodeFrame({ opcode: Opcode.HANDSHAKE, correlationId: 1 }, writer.finish());
}

export function fetchFrame(topic: string, correlationId: number, maxBytes = 0xffffffff): Buffer {
  const writer = new BinaryWriter(64);
  COMMANDS.fetch.encodeRequest(writer, { topic, partition: 0, offset: 0n, maxBytes, maxWaitMs: 0 });
  return encodeFrame({ opcode: Opcode.FETCH, correlationId }, writer.finish());
}

export function subscribeFrame(topic: string, correlationId: number, credit = 0xffffffff): Buffer {
  const writer = new BinaryWriter(64);
  COMMANDS.subscribe.encodeRequest(writer, { topic, partition: 0, offset: -2n, credit });
  return encodeFrame({ opcode: Opcode.SUBSCRIBE, correlationId }, writer.finish());
}

/** The first `sent` bytes of a produce frame whose header declares `declared` payload bytes. */
export function partialProduceFrame(topic: string, declared: number, sent: number): Buffer {
  const writer = new BinaryWriter(64);
  writer.string(topic).u32(0).u8(1);
  writer.u8(0); // no expected version
  const head = writer.finish();
  const payload = Buffer.alloc(declared);
  head.copy(payload);
  return encodeFrame({ opcode: Opcode.PRODUCE, correlationId: 2 }, payload).subarray(0, sent);
}

async function openAll(port: number, connections: number): Promise<Socket[]> {
  const sockets: Socket[] = [];
  for (let i = 0; i < connections; i += 50) {
    const batch = Math.min(50, connections - i);
    sockets.push(...(await Promise.all(Array.from({ length: batch }, () => openSocket(port)))));
  }
  return sockets;
}

function attack(sockets: Socket[]): Attack {
  return {
    sockets,
    leave() {
      for (const socket of sockets) socket.destroy();
    },
  };
}

/** Item 4: thousands of pipelined FETCH requests with a huge maxBytes per connection, never read. */
export async function pipelinedFetches(
  port: number,
  options: { topic: string; connections: number; requests: number },
): Promise<Attack> {
  const sockets = await openAll(port, options.connections);
  const fetches = Buffer.concat(
    Array.from({ length: options.requests }, (_, i) => fetchFrame(options.topic, i + 2)),
  );
  for (const socket of sockets) socket.write(Buffer.concat([handshakeFrame(), fetches]));
  return attack(sockets);
}

/** Item 5: subscriptions from the start of a topic declaring 4 GiB of credit, never read. */
export async function hugeCreditSubscriptions(
  port: number,
  options: { topic: string; connections: number; subscriptionsEach?: number },
): Promise<Attack> {
  const sockets = await openAll(port, options.connections);
  const subscribes = Array.from({ length: options.subscriptionsEach ?? 1 }, (_, i) =>
    subscribeFrame(options.topic, i + 2),
  );
  for (const socket of sockets) socket.write(Buffer.concat([handshakeFrame(), ...subscribes]));
  return attack(sockets);
}

/** Item 6: most of an 8 MiB produce frame on each connection, then silence. */
export async function halfSentFrames(
  port: number,
  options: { topic: string; connections: number; declared: number; sent: number },
): Promise<Attack> {
  const sockets = await openAll(port, options.connections);
  const partial = partialProduceFrame(options.topic, options.declared, options.sent);
  const handshake = handshakeFrame();
  for (const socket of sockets) {
    socket.write(handshake);
    socket.write(partial);
  }
  return attack(sockets);
}

/** Item 7: many connections from one address, handshaken and then idle. */
export async function connectionFlood(port: number, options: { connections: number }): Promise<Attack> {
  const sockets: Socket[] = [];
  for (let i = 0; i < options.connections; i++) {
    const socket = await openSocket(port).catch(() => null);
    if (socket === null) continue;
    socket.write(handshakeFrame());
    sockets.push(socket);
  }
  return attack(sockets);
}
