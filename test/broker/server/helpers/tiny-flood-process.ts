// A flood of tiny requests from its own process (so it competes with the broker for the CPU, as
// real attackers do, instead of sharing its event loop): `connections` connections send PING and
// LIST_TOPICS frames as fast as their sockets take them (64 per write); the odd ones never read an
// answer. Prints "ready" once every connection is open, then the count of frames written every
// 100 ms; runs until killed.
//
//   npx tsx test/broker/server/helpers/tiny-flood-process.ts <port> <connections>
import { BinaryWriter } from '../../../../src/protocol/codec/binary-writer.js';
import { COMMANDS } from '../../../../src/protocol/commands/registry.js';
import { encodeFrame } from '../../../../src/protocol/frame-header.js';
import { Opcode } from '../../../../src/protocol/opcodes.js';
import { handshakeFrame, openSocket } from './attacks.js';

const port = Number(process.argv[2]);
const connections = Number(process.argv[3] ?? 16);
const listTopics = new BinaryWriter(16);
COMMANDS.listTopics.encodeRequest(listTopics, {});
const listPayload = listTopics.finish();
let written = 0;

const sockets = await Promise.all(Array.from({ length: connections }, () => openSocket(port)));
sockets.forEach((socket, index) => {
  socket.write(handshakeFrame());
  // openSocket leaves the socket paused (never read); the even ones read and drop the answers.
  if (index % 2 === 0) {
    socket.on('data', () => undefined);
    socket.resume();
  }
  void (async () => {
    let correlationId = 2;
    while (!socket.destroyed) {
      const frames: Buffer[] = [];
      for (let i = 0; i < 64; i++)
        frames.push(
          i % 2 === 0
            ? encodeFrame({ opcode: Opcode.PING, correlationId: correlationId++ }, Buffer.alloc(0))
            : encodeFrame(
                { opcode: COMMANDS.listTopics.opcode, correlationId: correlationId++ },
                listPayload,
              ),
        );
      written += frames.length;
      if (!socket.write(Buffer.concat(frames)))
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 1000);
          const done = () => {
            clearTimeout(timer);
            resolve();
          };
          socket.once('drain', done);
          socket.once('close', done);
        });
      else await new Promise((resolve) => setImmediate(resolve));
    }
  })();
});
console.log('ready');
setInterval(() => console.log(String(written)), 100);
