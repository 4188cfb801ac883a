// A TCP proxy on 127.0.0.1 that holds back what the target sends to the client by a delay the
// test sets (and can change at any time): a slow link in one direction, which `tc netem` would
// give but this kernel lacks. Bytes keep their order; a lower delay never lets later bytes
// overtake earlier ones. Client-to-target bytes pass at once.

import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface DelayProxy {
  /** `127.0.0.1:<port>` to connect to instead of the target. */
  readonly address: string;
  readonly port: number;
  /** Holds target-to-client bytes back this long from now on. */
  setDelay(ms: number): void;
  close(): Promise<void>;
}

/** Delivers chunks to `socket` no sooner than each one's release time, in order. */
class DelayedPipe {
  private readonly queue: Array<{ chunk: Buffer; releaseAt: number }> = [];
  private timer: NodeJS.Timeout | null = null;
  private lastReleaseAt = 0;

  constructor(
    private readonly socket: Socket,
    private readonly delayMs: () => number,
  ) {}

  push(chunk: Buffer): void {
    const releaseAt = Math.max(Date.now() + this.delayMs(), this.lastReleaseAt);
    this.lastReleaseAt = releaseAt;
    this.queue.push({ chunk, releaseAt });
    this.schedule();
  }

  /** Ends the socket once everything queued was delivered. */
  end(): void {
    this.queue.push({ chunk: Buffer.alloc(0), releaseAt: this.lastReleaseAt });
    this.schedule();
  }

  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.queue.length = 0;
  }

  private schedule(): void {
    if (this.timer !== null || this.queue.length === 0) return;
    this.timer = setTimeout(
      () => {
        this.timer = null;
        const now = Date.now();
        while (this.queue.length > 0 && this.queue[0]!.releaseAt <= now) {
          const { chunk } = this.queue.shift()!;
          if (chunk.length === 0) this.socket.end();
          else this.socket.write(chunk);
        }
        this.schedule();
      },
      Math.max(0, this.queue[0]!.releaseAt - Date.now()),
    );
  }
}

export async function startDelayProxy(target: { host: string; port: number }): Promise<DelayProxy> {
  let delayMs = 0;
  const open = new Set<Socket>();
  const pipes = new Set<DelayedPipe>();
  const server: Server = createServer((client) => {
    const upstream = createConnection(target);
    const toClient = new DelayedPipe(client, () => delayMs);
    open.add(client);
    open.add(upstream);
    pipes.add(toClient);
    const closeBoth = () => {
      toClient.stop();
      pipes.delete(toClient);
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on('data', (chunk: Buffer) => upstream.write(chunk));
    client.on('end', () => upstream.end());
    upstream.on('data', (chunk: Buffer) => toClient.push(chunk));
    // An upstream that ends passes its end on after the data before it; one that closes without
    // an end (reset, refused) closes the client at once, as a direct connection would.
    let upstreamEnded = false;
    upstream.on('end', () => {
      upstreamEnded = true;
      toClient.end();
    });
    upstream.on('close', () => {
      if (!upstreamEnded) closeBoth();
    });
    client.on('error', closeBoth);
    upstream.on('error', closeBoth);
    client.on('close', closeBoth);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  return {
    address: `127.0.0.1:${port}`,
    port,
    setDelay(ms) {
      delayMs = ms;
    },
    async close() {
      for (const pipe of pipes) pipe.stop();
      for (const socket of open) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
