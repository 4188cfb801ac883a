// Redis Streams: redis-server with AOF (appendfsync everysec, no RDB snapshots) in a temp dir.
// Produce = XADD of one field pipelined 1,000 per pipeline with 8 pipelines in flight (the same
// window as MemoryStreamer's sendMany); replay = XRANGE pages of 10,000; the latency consumer is
// a blocking XREAD loop on a second connection.
import { execFileSync } from 'node:child_process';
import { Redis } from 'ioredis';
import { freePort, startServer, tempDir } from './servers.js';
import { LATENCY_STREAM, type System, THROUGHPUT_STREAM } from './workload.js';

type Entry = [id: Buffer, fields: Buffer[]];

function redisVersion(): string {
  const text = execFileSync('redis-server', ['--version']).toString();
  return /v=(\S+)/.exec(text)?.[1] ?? text.trim();
}

export async function openRedis(): Promise<System> {
  const version = redisVersion();
  const port = await freePort();
  const dir = await tempDir('redis');
  const server = await startServer({
    name: 'redis-server',
    command: 'redis-server',
    args: [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--appendonly',
      'yes',
      '--appendfsync',
      'everysec',
      '--dir',
      dir,
      '--save',
      '',
    ],
    dir,
    readyPort: port,
  });
  const options = { host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: null };
  const producer = new Redis(options);
  // XREAD BLOCK holds its connection, so the latency consumer needs one of its own.
  const reader = new Redis(options);
  let reading = true;
  try {
    await producer.connect();
    await reader.connect();
  } catch (error) {
    producer.disconnect();
    reader.disconnect();
    await server.stop();
    throw error;
  }
  return {
    name: 'Redis Streams',
    version,
    ackMeans: 'AOF appendfsync everysec: ack = in memory + AOF write() (page cache), fsync each second',
    serverPid: server.pid,
    async produce(count, value) {
      let window: Promise<unknown>[] = [];
      for (let sent = 0; sent < count; ) {
        const pipeline = producer.pipeline();
        const n = Math.min(1000, count - sent);
        for (let i = 0; i < n; i++) pipeline.xadd(THROUGHPUT_STREAM, '*', 'v', value);
        sent += n;
        window.push(
          pipeline.exec().then((results) => {
            const failed = results?.find(([error]) => error !== null);
            if (failed) throw failed[0];
          }),
        );
        if (window.length === 8) {
          await Promise.all(window);
          window = [];
        }
      }
      await Promise.all(window);
    },
    async replay(count) {
      let received = 0;
      let start = '-';
      while (received < count) {
        const page = (await producer.xrangeBuffer(THROUGHPUT_STREAM, start, '+', 'COUNT', 10_000)) as Entry[];
        if (page.length === 0) break;
        for (const [, fields] of page) if (fields[1] !== undefined) received++;
        // An exclusive start (Redis ≥ 6.2) continues after the last entry of this page.
        start = `(${page[page.length - 1]![0].toString()}`;
      }
      return received;
    },
    async subscribe(onValue) {
      // The latency stream does not exist yet, so reading from 0 sees every message published.
      let last = '0-0';
      void (async () => {
        while (reading) {
          const reply = (await reader
            .xreadBuffer('COUNT', 10_000, 'BLOCK', 1000, 'STREAMS', LATENCY_STREAM, last)
            .catch((error: unknown) => {
              if (reading) throw error;
              return null;
            })) as [key: Buffer, entries: Entry[]][] | null;
          for (const [, entries] of reply ?? []) {
            for (const [id, fields] of entries) {
              last = id.toString();
              if (fields[1] !== undefined) onValue(fields[1]);
            }
          }
        }
      })();
    },
    publish(value) {
      return producer.xadd(LATENCY_STREAM, '*', 'v', value);
    },
    async close() {
      reading = false;
      reader.disconnect();
      await producer.quit().catch(() => undefined);
      await server.stop();
    },
  };
}
