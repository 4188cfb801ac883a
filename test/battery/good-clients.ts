// The well-behaved clients that run beside every attack: a producer sending on a fixed schedule
// with acknowledgements to a durability-`always` topic, and a consumer long-polling the same
// partition. Both use the project's TCP transport, record every operation's due and completion time
// (latency from the due time, so a stall delays every message due during it), and the producer
// keeps every acknowledged offset with its exact payload for the final read-back.

import { get } from 'node:http';
import { TcpTransport } from '../../src/client/tcp-transport.js';
import { encodeRecordBatch, iterateRecords, splitBatches } from '../../src/protocol/record-batch.js';
import type { Acknowledged, Operation, ReadRecord } from './checks.js';
import type { SeededRandom } from './random.js';

export type Phase = 'before' | 'attack' | 'after';

export interface TimedOperation extends Operation {
  phase: Phase;
}

const INFLATE = { maxDecompressedBytes: 64 * 1024 * 1024 };

export function transportTo(port: number, clientId: string): TcpTransport {
  return new TcpTransport({ brokers: [{ host: '127.0.0.1', port }], clientId, connectTimeoutMs: 5000 });
}

export class GoodProducer {
  readonly operations: TimedOperation[] = [];
  readonly acknowledged: Acknowledged[] = [];
  readonly errors: string[] = [];
  phase: Phase = 'before';
  /** performance.now() of each message's send, by its sequence number (for the consumer's latency). */
  readonly dueBySequence = new Map<number, number>();
  private readonly transport: TcpTransport;
  private running = false;
  private loop: Promise<void> | null = null;
  private inFlight = 0;
  private readonly settled: Array<Promise<void>> = [];

  constructor(
    port: number,
    private readonly topic: string,
    private readonly rate: number,
    private readonly random: SeededRandom,
    private readonly timeoutMs: number,
  ) {
    this.transport = transportTo(port, 'battery-good-producer');
  }

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    const interval = 1000 / this.rate;
    const origin = performance.now();
    let sequence = 0;
    while (this.running) {
      const due = origin + sequence * interval;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      if (!this.running) break;
      // A bounded window: past it the producer waits (a real client's back-pressure), and the
      // messages due meanwhile count their wait in their latency.
      while (this.inFlight >= 256 && this.running) await new Promise((resolve) => setTimeout(resolve, 5));
      this.send(sequence++, due);
    }
  }

  private send(sequence: number, due: number): void {
    const payload = Buffer.concat([
      Buffer.from(`good|${sequence}|`),
      this.random.bytes(64 + this.random.below(192)),
    ]);
    const op: TimedOperation = { due, done: null, phase: this.phase };
    this.operations.push(op);
    this.dueBySequence.set(sequence, due);
    this.inFlight++;
    const batch = encodeRecordBatch([{ key: `k${sequence % 16}`, value: payload }]);
    const settled = this.transport
      .request('produce', { topic: this.topic, partition: 0, acks: 1, batch }, { timeoutMs: this.timeoutMs })
      .then(
        (response) => {
          op.done = performance.now();
          this.acknowledged.push({ offset: response.baseOffset, payload });
        },
        (error: Error) => {
          this.errors.push(`${this.phase}: ${error.message}`);
        },
      )
      .finally(() => this.inFlight--);
    this.settled.push(settled);
  }

  /** Stops sending and waits for the answers still due (each bounded by the request timeout). */
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    await Promise.all(this.settled);
    await this.transport.close();
  }
}

export class GoodConsumer {
  /** One per good message delivered: due = its producer's due time, done = delivery. */
  readonly deliveries: TimedOperation[] = [];
  readonly errors: string[] = [];
  phase: Phase = 'before';
  delivered = 0;
  private nextOffset = 0n;
  private running = false;
  private loop: Promise<void> | null = null;
  private readonly transport: TcpTransport;

  constructor(
    port: number,
    private readonly topic: string,
    private readonly producer: GoodProducer,
    private readonly timeoutMs: number,
  ) {
    this.transport = transportTo(port, 'battery-good-consumer');
  }

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        const response = await this.transport.request(
          'fetch',
          { topic: this.topic, partition: 0, offset: this.nextOffset, maxBytes: 1024 * 1024, maxWaitMs: 200 },
          { timeoutMs: this.timeoutMs },
        );
        const now = performance.now();
        for (const batch of splitBatches(response.batches)) {
          for (const record of iterateRecords(batch, INFLATE)) {
            if (record.offset < this.nextOffset) continue;
            this.nextOffset = record.offset + 1n;
            const match =
              record.value === null ? null : /^good\|(\d+)\|/.exec(record.value.toString('latin1', 0, 24));
            const due = match ? this.producer.dueBySequence.get(Number(match[1])) : undefined;
            if (due === undefined) continue;
            this.delivered++;
            this.deliveries.push({ due, done: now, phase: this.phase });
          }
        }
      } catch (error) {
        this.errors.push(`${this.phase} at offset ${this.nextOffset}: ${(error as Error).message}`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    await this.transport.close();
  }
}

/**
 * The consumer-side stall: for every acknowledged message, the time from its due time until the
 * consumer delivered it, or until `now` if it never did.
 */
export function consumerOperations(
  producer: GoodProducer,
  consumer: GoodConsumer,
  now: number,
): TimedOperation[] {
  const deliveredAt = new Map<number, number>();
  for (const d of consumer.deliveries) deliveredAt.set(d.due, d.done ?? now);
  return producer.operations
    .filter((op) => op.done !== null)
    .map((op) => ({ due: op.due, done: deliveredAt.get(op.due) ?? null, phase: op.phase }));
}

/** Probes GET /healthz on the admin port every `intervalMs`; a probe fails after `timeoutMs`. */
export class HealthProbe {
  probes = 0;
  readonly failures: string[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly adminPort: number,
    private readonly intervalMs: number,
    private readonly timeoutMs: number,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.probe(), this.intervalMs);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
  }

  probe(): Promise<boolean> {
    this.probes++;
    return new Promise((resolve) => {
      const request = get(
        { host: '127.0.0.1', port: this.adminPort, path: '/healthz', timeout: this.timeoutMs, agent: false },
        (response) => {
          response.resume();
          if (response.statusCode === 200) resolve(true);
          else {
            this.failures.push(`HTTP ${response.statusCode}`);
            resolve(false);
          }
        },
      );
      request.on('timeout', () => request.destroy(new Error(`no answer in ${this.timeoutMs} ms`)));
      request.on('error', (error) => {
        this.failures.push(error.message);
        resolve(false);
      });
    });
  }
}

/**
 * Reads a partition from its start to its high watermark as a fresh consumer would, decoding every
 * record. A batch that does not decode is reported and skipped (its length is in its header), so
 * the rest can still be checked; a fetch the broker refuses is retried one offset further on.
 */
export async function readWholePartition(
  port: number,
  topic: string,
  timeoutMs: number,
): Promise<{ records: ReadRecord[]; errors: string[]; highWatermark: bigint }> {
  const transport = transportTo(port, 'battery-read-back');
  const records: ReadRecord[] = [];
  const errors: string[] = [];
  try {
    const start = (
      await transport.request('listOffsets', { topic, partition: 0, spec: 'earliest' }, { timeoutMs })
    ).offset;
    const end = (
      await transport.request('listOffsets', { topic, partition: 0, spec: 'latest' }, { timeoutMs })
    ).offset;
    let offset = start;
    let refusals = 0;
    while (offset < end && refusals < 50) {
      let batches: Buffer;
      try {
        batches = (
          await transport.request(
            'fetch',
            { topic, partition: 0, offset, maxBytes: 4 * 1024 * 1024, maxWaitMs: 0 },
            { timeoutMs },
          )
        ).batches;
      } catch (error) {
        errors.push(`fetch at ${offset}: ${(error as Error).message}`);
        refusals++;
        offset++;
        continue;
      }
      const before = offset;
      for (const batch of splitBatches(batches)) {
        const base = batch.readBigInt64BE(0);
        const last = base + BigInt(batch.readInt32BE(23));
        if (last < offset) continue;
        try {
          for (const record of iterateRecords(batch, INFLATE)) {
            if (record.offset >= offset) records.push({ offset: record.offset, payload: record.value });
          }
        } catch (error) {
          errors.push(`batch at ${base}: ${(error as Error).message}`);
        }
        offset = last + 1n;
      }
      if (offset === before) {
        errors.push(`no progress at offset ${offset} (an empty fetch below the end ${end})`);
        break;
      }
    }
    return { records, errors, highWatermark: end };
  } finally {
    await transport.close();
  }
}
