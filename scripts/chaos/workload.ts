// The battery's workload, from the runner's namespace over the brokers' advertised addresses:
// - producers with `acks: 'all'` and idempotence over the partitions of `chaos-log`, every
//   acknowledged offset recorded with its (unique) value;
// - one writer per key on `chaos-streams` appending with an expected version, every acknowledged
//   append recorded with its version; a send that failed may still have landed, so after one the
//   writer tries the same version again and, if the stream is past it, takes it as landed;
// - a consumer group reading `chaos-log` and committing what it was handed, every message and
//   commit recorded, and the group's committed offsets read back every second.
// Errors during faults are expected: a failed send is only not acknowledged. The workload stops
// when asked and leaves nothing running.

import type { Client } from '../../src/client/client.js';
import { connect } from '../../src/client/connect.js';
import type { Consumer } from '../../src/client/consumer/consumer.js';
import type { History } from './history.js';

export const LOG_TOPIC = 'chaos-log';
export const STREAM_TOPIC = 'chaos-streams';
export const GROUP = 'chaos-group';
export const LOG_PARTITIONS = 4;
export const STREAM_PARTITIONS = 2;
export const STREAM_KEYS = ['s0', 's1', 's2', 's3'];
const PRODUCERS = 2;
const IN_FLIGHT = 8;
const COMMIT_EVERY = 40;

export interface WorkloadCounts {
  sent: number;
  acknowledged: number;
  failed: number;
  streamAppends: number;
  consumed: number;
  commits: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function codeOf(error: unknown): string {
  return (error as { codeName?: string }).codeName ?? (error as Error).message ?? String(error);
}

export class Workload {
  readonly counts: WorkloadCounts = {
    sent: 0,
    acknowledged: 0,
    failed: 0,
    streamAppends: 0,
    consumed: 0,
    commits: 0,
  };
  private stopping = false;
  private readonly loops: Promise<void>[] = [];
  private consumer: Consumer | null = null;
  private readonly errors = new Map<string, number>();

  private constructor(
    private readonly client: Client,
    private readonly history: History,
  ) {}

  static async connect(addresses: readonly string[], history: History): Promise<Workload> {
    const client = await connect({
      brokers: [...addresses],
      requestTimeoutMs: 8_000,
      connectTimeoutMs: 3_000,
    });
    return new Workload(client, history);
  }

  get admin(): Client['admin'] {
    return this.client.admin;
  }

  /** Error names seen by the workload, with their counts (for the progress line). */
  get errorCounts(): ReadonlyMap<string, number> {
    return this.errors;
  }

  private noteError(error: unknown): void {
    const code = codeOf(error);
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
  }

  /** Creates the topics (replication factor 3, two copies needed for `acks: 'all'`). */
  async createTopics(): Promise<void> {
    for (const [name, partitions] of [
      [LOG_TOPIC, LOG_PARTITIONS],
      [STREAM_TOPIC, STREAM_PARTITIONS],
    ] as const) {
      const deadline = Date.now() + 60_000;
      for (;;) {
        try {
          await this.client.admin.createTopic({
            name,
            partitions,
            replicationFactor: 3,
            config: { minInsyncReplicas: 2 },
          });
          break;
        } catch (error) {
          if (codeOf(error) === 'TOPIC_ALREADY_EXISTS') break;
          if (Date.now() > deadline) throw error;
          await sleep(500);
        }
      }
    }
  }

  start(): void {
    for (let producer = 0; producer < PRODUCERS; producer++) this.loops.push(this.produceLoop(producer));
    for (const key of STREAM_KEYS) this.loops.push(this.streamLoop(key));
    this.loops.push(this.consumeLoop());
    this.loops.push(this.committedLoop());
  }

  private async produceLoop(producerIndex: number): Promise<void> {
    const producer = this.client.producer({ acks: 'all', idempotent: true, timeoutMs: 10_000, retries: 5 });
    let n = 0;
    while (!this.stopping) {
      const sends = Array.from({ length: IN_FLIGHT }, () => {
        const value = `p${producerIndex}-${n}`;
        const partition = n % LOG_PARTITIONS;
        n++;
        this.counts.sent++;
        return producer.send({ topic: LOG_TOPIC, partition, value }).then(
          (receipt) => {
            this.counts.acknowledged++;
            this.history.record({
              type: 'ack',
              partition: receipt.partition,
              offset: receipt.offset.toString(),
              value,
            });
          },
          (error: unknown) => {
            this.counts.failed++;
            this.noteError(error);
          },
        );
      });
      await Promise.all(sends);
      await sleep(20);
    }
    await producer.close().catch(() => undefined);
  }

  private async streamLoop(key: string): Promise<void> {
    const producer = this.client.producer({ acks: 'all', idempotent: true, timeoutMs: 10_000, retries: 5 });
    let version = 0;
    let attempt = 0;
    // A failed append at this version may have landed: a conflict there then means it did.
    let uncertainAt: number | null = null;
    while (!this.stopping) {
      const value = `${key}-v${version}-a${attempt++}`;
      try {
        const receipt = await producer.send({ topic: STREAM_TOPIC, key, value, expectedVersion: version });
        this.counts.streamAppends++;
        this.history.record({
          type: 'stream-ack',
          key,
          partition: receipt.partition,
          offset: receipt.offset.toString(),
          version,
          value,
        });
        if (receipt.sequence !== version)
          this.history.record({
            type: 'note',
            detail: `stream ${key}: expected version ${version} acknowledged with sequence ${receipt.sequence}`,
          });
        version++;
        uncertainAt = null;
        await sleep(50);
      } catch (error) {
        if (codeOf(error) === 'STREAM_VERSION_CONFLICT' && uncertainAt === version) {
          version++;
          uncertainAt = null;
          continue;
        }
        if (codeOf(error) === 'STREAM_VERSION_CONFLICT') {
          // Nothing of ours can be at this version: the stream is not where its acknowledgements
          // put it. Recorded; the checks decide from the final log.
          this.history.record({ type: 'note', detail: `stream ${key}: unexpected conflict at ${version}` });
          break;
        }
        this.noteError(error);
        uncertainAt = version;
        await sleep(200);
      }
    }
    await producer.close().catch(() => undefined);
  }

  private async consumeLoop(): Promise<void> {
    const lastCommitted = new Map<string, bigint>();
    while (!this.stopping) {
      const consumer = this.client.consumer({
        topics: [LOG_TOPIC],
        group: GROUP,
        autoCommit: false,
        sessionTimeoutMs: 6_000,
      });
      this.consumer = consumer;
      let sinceCommit = 0;
      try {
        while (!this.stopping) {
          const message = await consumer.next();
          if (message === null) break;
          this.counts.consumed++;
          this.history.record({
            type: 'consume',
            partition: message.partition,
            offset: message.offset.toString(),
            value: message.value?.toString() ?? '',
          });
          if (++sinceCommit >= COMMIT_EVERY) {
            // What commit() commits: the positions of the partitions the member holds now (after a
            // rebalance, not those whose messages came before it and were not committed).
            const offsets = Object.fromEntries(
              consumer
                .positions()
                .filter((position) => position.topic === LOG_TOPIC && position.offset >= 0n)
                .map((position) => [String(position.partition), position.offset.toString()]),
            );
            await consumer.commit();
            this.counts.commits++;
            this.history.record({ type: 'commit', offsets });
            for (const [partition, offset] of Object.entries(offsets)) {
              const before = lastCommitted.get(partition);
              if (before !== undefined && BigInt(offset) < before)
                this.history.record({
                  type: 'note',
                  detail: `the consumer committed partition ${partition} at ${offset} after ${before} (handed messages again)`,
                });
              lastCommitted.set(partition, BigInt(offset));
            }
            sinceCommit = 0;
          }
        }
      } catch (error) {
        this.noteError(error);
      } finally {
        this.consumer = null;
        await consumer.close().catch(() => undefined);
      }
      if (!this.stopping) await sleep(500);
    }
  }

  private async committedLoop(): Promise<void> {
    while (!this.stopping) {
      await this.observeCommitted();
      await sleep(1_000);
    }
  }

  /** Reads the group's committed offsets and records them. */
  async observeCommitted(): Promise<void> {
    const askedAt = this.history.elapsedMs;
    try {
      const offsets = await this.client.admin.groupOffsets(GROUP);
      const mine = offsets.filter((entry) => entry.topic === LOG_TOPIC);
      if (mine.length > 0)
        this.history.record({
          type: 'committed',
          askedAt,
          offsets: Object.fromEntries(
            mine.map((entry) => [String(entry.partition), entry.offset.toString()]),
          ),
        });
    } catch (error) {
      this.noteError(error);
    }
  }

  /** Stops every loop and waits for them. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.consumer?.close().catch(() => undefined);
    await Promise.all(this.loops);
  }

  async close(): Promise<void> {
    await this.client.close().catch(() => undefined);
  }
}
