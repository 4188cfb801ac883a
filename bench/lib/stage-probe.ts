// Per-stage timestamps of single messages for bench/latency-stages.ts: where, between send and
// consumer receipt, a message's time goes. Loaded into the broker process with `--import` (and
// installed in the client process by calling installClientProbe), it wraps methods of the real
// classes on their prototypes — nothing of this runs in a normal broker or client, and the source
// files carry no probe code.
//
// Key: a message's producer sequence. One idempotent producer writes a fresh topic, so message i
// of the run has sequence i; a record batch carries baseSequence (byte 53) and recordCount (byte
// 57), and a batch-level stage is stamped on every message of the batch. Times are µs of
// CLOCK_MONOTONIC (process.hrtime), the same clock in every process of the machine, so stages of
// the client and of the broker process line up without any clock exchange.
import { writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { PerformanceObserver } from 'node:perf_hooks';

export const nowUs = (): number => Number(process.hrtime.bigint()) / 1000;

const MAX = Number(process.env.STAGE_PROBE_MAX ?? 1 << 20);
const stages = new Map<string, Float64Array>();
/** [start, end] µs pairs of garbage collections, and of fdatasyncs, in this process. */
const gcs: number[] = [];
const syncs: number[] = [];

/**
 * Stamps `stage` for every message of the batches in `data` (one batch, or several back to back as
 * a log read returns them). The first stamp wins: retries do not move it.
 */
export function stampBatch(stage: string, data: Buffer, at = nowUs()): void {
  for (let offset = 0; offset + 61 <= data.length; ) {
    const base = data.readInt32BE(offset + 53);
    const count = data.readInt32BE(offset + 57);
    if (base >= 0) for (let i = 0; i < count; i++) stamp(stage, base + i, at);
    offset += data.readInt32BE(offset + 8) + 12;
  }
}

export function stamp(stage: string, sequence: number, at = nowUs()): void {
  if (sequence < 0 || sequence >= MAX) return;
  let times = stages.get(stage);
  if (times === undefined) {
    times = new Float64Array(MAX);
    stages.set(stage, times);
  }
  if (times[sequence] === 0) times[sequence] = at;
}

export interface ProbeDump {
  stages: Record<string, number[]>;
  gcs: number[];
  syncs: number[];
}

/** The stamps of sequences [from, to), as plain arrays (0 = never stamped). */
export function dump(from: number, to: number): ProbeDump {
  const out: Record<string, number[]> = {};
  for (const [stage, times] of stages) out[stage] = Array.from(times.subarray(from, to));
  return { stages: out, gcs: [...gcs], syncs: [...syncs] };
}

function watchGc(): void {
  // performance.now() → hrtime µs, measured once (both clocks are monotonic, the offset is fixed).
  const offset = nowUs() - performance.now() * 1000;
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const start = entry.startTime * 1000 + offset;
      gcs.push(start, start + entry.duration * 1000);
    }
  }).observe({ entryTypes: ['gc'] });
}

type Method = (this: unknown, ...args: never[]) => unknown;
function wrap(
  proto: object,
  name: string,
  around: (original: Method) => (this: unknown, ...args: never[]) => unknown,
): void {
  const target = proto as Record<string, Method>;
  const original = target[name];
  if (typeof original !== 'function') throw new Error(`stage probe: no method ${name} to wrap`);
  target[name] = around(original);
}

/**
 * fdatasync intervals (on the FileHandle class of node:fs/promises), and the log's segment writes:
 * `Segment.write` (through the thread pool) and, where the log has it, `Segment.writeInline` (a
 * synchronous write into the page cache). Wrapping the segment rather than the file handle stamps
 * the write of a memory topic's log too, and an in-line write as well as a pooled one.
 */
async function watchFiles(root: URL): Promise<void> {
  const handle = await open(process.execPath, 'r');
  const proto = Object.getPrototypeOf(handle) as object;
  await handle.close();
  wrap(
    proto,
    'datasync',
    (original) =>
      function (this: unknown) {
        const started = nowUs();
        const result = original.call(this) as Promise<void>;
        return result.finally(() => syncs.push(started, nowUs()));
      },
  );
  const { Segment } = await import(new URL('storage/segment.ts', root).href);
  wrap(
    Segment.prototype,
    'write',
    (original) =>
      function (this: unknown, ...args: never[]) {
        const buffers = args[0] as unknown as Buffer[];
        const started = nowUs();
        for (const batch of buffers) stampBatch('broker: write start', batch, started);
        const result = original.apply(this, args) as Promise<unknown>;
        return result.then((value) => {
          const done = nowUs();
          for (const batch of buffers) stampBatch('broker: write done (JS)', batch, done);
          return value;
        });
      },
  );
  if (typeof Segment.prototype.writeInline === 'function') {
    wrap(
      Segment.prototype,
      'writeInline',
      (original) =>
        function (this: unknown, ...args: never[]) {
          const buffers = args[0] as unknown as Buffer[];
          const started = nowUs();
          const written = original.apply(this, args);
          const done = nowUs();
          if (written === true) {
            for (const batch of buffers) {
              stampBatch('broker: write start', batch, started);
              stampBatch('broker: write done (JS)', batch, done);
              stampBatch('broker: written in line', batch, done);
            }
          }
          return written;
        },
    );
  }
}

/** Batches a push subscription had to read back from the log (catch-up) instead of the tail. */
async function watchReads(root: URL): Promise<void> {
  const { PartitionLog } = await import(new URL('storage/partition-log.ts', root).href);
  wrap(
    PartitionLog.prototype,
    'read',
    (original) =>
      function (this: unknown, ...args: never[]) {
        return (original.apply(this, args) as Promise<{ data: Buffer }>).then((result) => {
          stampBatch('broker: read back from the log', result.data);
          return result;
        });
      },
  );
}

/** In the broker process: frame arrival, produce start and end, push written. */
async function installBrokerProbe(): Promise<void> {
  const root = new URL('../../src/', import.meta.url);
  const { Connection } = await import(new URL('broker/server/connection.ts', root).href);
  const { BrokerCore } = await import(new URL('broker/broker-core.ts', root).href);
  let dataAt = 0;
  wrap(
    Connection.prototype,
    'onData',
    (original) =>
      function (this: unknown, ...args: never[]) {
        dataAt = nowUs();
        return original.apply(this, args);
      },
  );
  wrap(
    BrokerCore.prototype,
    'execute',
    (original) =>
      function (this: unknown, ...args: never[]) {
        const [name, request] = args as unknown as [string, { batch?: Buffer }];
        if (name !== 'produce' || request.batch === undefined) return original.apply(this, args);
        stampBatch('broker: data event', request.batch, dataAt);
        stampBatch('broker: produce start', request.batch);
        const batch = request.batch;
        return (original.apply(this, args) as Promise<unknown>).then((response) => {
          stampBatch('broker: produce acked', batch);
          return response;
        });
      },
  );
  wrap(
    Connection.prototype,
    'push',
    (original) =>
      function (this: unknown, ...args: never[]) {
        const batches = args[2] as unknown as readonly Buffer[];
        for (const batch of batches) stampBatch('broker: push written', batch);
        return original.apply(this, args);
      },
  );
  await watchReads(root);
  await watchFiles(root);
  watchGc();
  const out = process.env.STAGE_PROBE_OUT;
  process.on('SIGUSR2', () => {
    if (out !== undefined) writeFileSync(out, JSON.stringify(dump(0, Number(process.env.STAGE_PROBE_COUNT))));
  });
}

/**
 * In the client process: batch sealed by the producer, frame handed to the socket, push frame
 * decoded. `root` is the src/ folder URL. Embedded runs stamp the broker's stages here too.
 */
export async function installClientProbe(embedded: boolean): Promise<void> {
  const root = new URL('../../src/', import.meta.url);
  const { Producer } = await import(new URL('client/producer.ts', root).href);
  const { TcpTransport } = await import(new URL('client/tcp-transport.ts', root).href);
  wrap(
    Producer.prototype,
    'submit',
    (original) =>
      function (this: unknown, ...args: never[]) {
        // submit(lane, pending): called once per batch, right after it is sealed.
        stampBatch(
          'client: batch sealed',
          (args[1] as unknown as { request: { batch: Buffer } }).request.batch,
        );
        return original.apply(this, args);
      },
  );
  wrap(
    TcpTransport.prototype,
    'send',
    (original) =>
      function (this: unknown, ...args: never[]) {
        const frame = args[1] as unknown as Buffer | Buffer[];
        if (Array.isArray(frame) && frame[1] !== undefined) stampBatch('client: frame to socket', frame[1]);
        return original.apply(this, args);
      },
  );
  wrap(
    TcpTransport.prototype,
    'onPush',
    (original) =>
      function (this: unknown, ...args: never[]) {
        const frame = args[1] as unknown as { payload: Buffer };
        if (frame.payload.length > 8) stampBatch('client: push decoded', frame.payload.subarray(8));
        return original.apply(this, args);
      },
  );
  if (embedded) {
    const { BrokerCore } = await import(new URL('broker/broker-core.ts', root).href);
    wrap(
      BrokerCore.prototype,
      'execute',
      (original) =>
        function (this: unknown, ...args: never[]) {
          const [name, request] = args as unknown as [string, { batch?: Buffer }];
          if (name !== 'produce' || request.batch === undefined) return original.apply(this, args);
          stampBatch('broker: produce start', request.batch);
          const batch = request.batch;
          return (original.apply(this, args) as Promise<unknown>).then((response) => {
            stampBatch('broker: produce acked', batch);
            return response;
          });
        },
    );
    const { InProcessTransport } = await import(new URL('embedded/in-process-transport.ts', root).href);
    wrap(
      InProcessTransport.prototype,
      'subscribe',
      (original) =>
        function (this: unknown, ...args: never[]) {
          const handlers = args[1] as unknown as {
            onBatches(batches: readonly Buffer[], hw: bigint): void;
          };
          const onBatches = handlers.onBatches;
          handlers.onBatches = (batches, hw) => {
            for (const batch of batches) stampBatch('broker: push written', batch);
            onBatches(batches, hw);
          };
          return original.apply(this, args);
        },
    );
    await watchReads(root);
    await watchFiles(root);
  }
  watchGc();
}

if (process.env.STAGE_PROBE === 'broker') await installBrokerProbe();
