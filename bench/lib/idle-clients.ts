// Child process for bench/idle-connections.ts: opens argv[3] connections to 127.0.0.1:argv[2],
// completes the handshake on each, prints "ready <n>", then holds them open until SIGTERM.
import { connect, type Socket } from 'node:net';
import { BinaryWriter } from '../../src/protocol/codec/binary-writer.js';
import { handshakeCommand } from '../../src/protocol/commands/control.js';
import { encodeFrame } from '../../src/protocol/frame-header.js';
import { Opcode } from '../../src/protocol/opcodes.js';

const port = Number(process.argv[2]);
const count = Number(process.argv[3]);
const writer = new BinaryWriter(64);
handshakeCommand.encodeRequest(writer, { minVersion: 1, maxVersion: 1, features: 0, clientId: 'idle' });
const handshake = encodeFrame({ opcode: Opcode.HANDSHAKE, correlationId: 1 }, writer.finish());
const sockets: Socket[] = [];

function open(): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => socket.write(handshake));
    socket.once('data', () => resolve());
    socket.once('error', reject);
    sockets.push(socket);
  });
}

for (let i = 0; i < count; i += 200) {
  await Promise.all(Array.from({ length: Math.min(200, count - i) }, open));
}
process.stdout.write(`ready ${sockets.length}\n`);
process.on('SIGTERM', () => {
  for (const socket of sockets) socket.destroy();
  process.exit(0);
});
setInterval(() => undefined, 1 << 30);
