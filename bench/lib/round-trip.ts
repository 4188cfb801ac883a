// Bare loopback limits shared by bench/ping.ts and bench/compare: the Node TCP echo server as a
// child process (bench/lib/echo-server.ts) and one-request-at-a-time round trips against it.
import { type ChildProcess, spawn } from 'node:child_process';
import { connect as netConnect, type Socket } from 'node:net';

export interface EchoServer {
  port: number;
  pid: number;
  child: ChildProcess;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<void>;
}

/**
 * Starts bench/lib/echo-server.ts in its own process, so the echo does not share our event loop.
 * With `writeFile`, it appends what it receives to that file before echoing it (see there).
 */
export async function startEchoServer(writeFile?: string): Promise<EchoServer> {
  const args = writeFile === undefined ? [] : ['--write', writeFile];
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/lib/echo-server.ts', ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    child.once('exit', (code) => reject(new Error(`echo server exited with ${code}`)));
  });
  return {
    port,
    pid: child.pid!,
    child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export async function connectEcho(port: number): Promise<Socket> {
  const socket = netConnect({ host: '127.0.0.1', port, noDelay: true });
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return socket;
}

/** `n` round trips of a `bytes`-long message, one in flight; `record` gets each one in µs. */
export async function echoRoundTrips(
  socket: Socket,
  n: number,
  record: ((us: number) => void) | null,
  bytes = 40,
): Promise<void> {
  const message = Buffer.alloc(bytes, 1);
  let pending: (() => void) | null = null;
  let received = 0;
  const onData = (chunk: Buffer) => {
    received += chunk.length;
    if (received >= message.length && pending !== null) {
      received -= message.length;
      const wake = pending;
      pending = null;
      wake();
    }
  };
  socket.on('data', onData);
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    await new Promise<void>((resolve) => {
      pending = resolve;
      socket.write(message);
    });
    record?.(Math.max(1, Math.round((performance.now() - started) * 1000)));
  }
  socket.off('data', onData);
}
