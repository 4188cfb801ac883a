// The bare limit for round trips: a Node TCP server that echoes every byte back, nothing else.
// Run as a child process by bench/ping.ts; prints its port on stdout.
//
// With `--write <file>` it first appends what it received to the file and echoes it once that
// write has completed — the floor for a broker that, like ours, makes data visible only once it is
// written: one positioned writev on libuv's threadpool at a time, chunks that arrive meanwhile
// going out together in the next one (as the partition log coalesces appends), and an fdatasync
// every 100 ms like durability `interval`.
import { fdatasync, openSync, writev } from 'node:fs';
import { createServer, type Socket } from 'node:net';

const fileArg = process.argv.indexOf('--write');
const fd = fileArg < 0 ? null : openSync(process.argv[fileArg + 1]!, 'w');
let position = 0;
let writing = false;
let queued: Array<{ socket: Socket; chunk: Buffer }> = [];

function writeQueued(): void {
  if (writing || queued.length === 0 || fd === null) return;
  writing = true;
  const group = queued;
  queued = [];
  const buffers = group.map((q) => q.chunk);
  const at = position;
  for (const buffer of buffers) position += buffer.length;
  writev(fd, buffers, at, (error) => {
    writing = false;
    if (error !== null) throw error;
    for (const { socket, chunk } of group) if (!socket.destroyed) socket.write(chunk);
    writeQueued();
  });
}

if (fd !== null) {
  setInterval(() => fdatasync(fd, () => undefined), 100).unref();
}

const server = createServer({ noDelay: true }, (socket) => {
  socket.on('data', (chunk) => {
    if (fd === null) {
      socket.write(chunk);
      return;
    }
    queued.push({ socket, chunk });
    // Like the log: appends of one event-loop turn go out together.
    setImmediate(writeQueued);
  });
  socket.on('error', () => socket.destroy());
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address !== null && typeof address === 'object') process.stdout.write(`${address.port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
