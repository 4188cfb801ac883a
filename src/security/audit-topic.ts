// The optional audit topic (`audit.topic`): every record written to the audit log on disk is also
// appended to an internal topic of one partition, so that a consumer can follow the audit trail and
// check its chain (`memorystreamer audit verify --topic`) without access to the broker's files.
//
// A message of the topic:  key   = the record's action (`auth.login`, `authz.read`, …), UTF-8
//                          value = the record's line exactly as on disk (without "\n"), UTF-8,
//                                  so its hash and its link to the record before are checked as
//                                  they are on disk.
//
// The disk log stays the record. The topic write never blocks nor fails the audited action: records
// are queued and written by one loop, in the order the disk chain has them (each write waits for
// the one before); a queue over `maxQueued` records drops the newest and a write that fails drops
// its records, both counted and reported through `onLost`. A record lost that way leaves a gap in
// the topic that its verification reports (the disk log still holds the record).

import type { AuditRecord } from './audit-record.js';

/** Records waiting for the topic at most; more are dropped (and counted) rather than held in memory. */
export const DEFAULT_AUDIT_TOPIC_QUEUE = 10_000;
/** Records written to the topic in one batch at most. */
const MAX_BATCH_RECORDS = 500;

export interface AuditTopicMessage {
  readonly key: string;
  readonly value: string;
}

export interface AuditTopicWriterOptions {
  /** Appends messages to the topic's partition, in order; resolves once they are written. */
  readonly append: (messages: readonly AuditTopicMessage[]) => Promise<void>;
  readonly maxQueued?: number;
  /** Records that did not reach the topic: how many, and why (a full queue, a failed write). */
  readonly onLost?: (count: number, reason: string) => void;
}

/** The message of one audit record: key the action, value its line as on disk. */
export function auditTopicMessage(record: AuditRecord, line: string): AuditTopicMessage {
  return { key: record.action, value: line };
}

export class AuditTopicWriter {
  /** Records written to the topic. */
  written = 0;
  /** Records dropped because the queue was full. */
  dropped = 0;
  /** Records of writes that failed. */
  failed = 0;
  private readonly append: AuditTopicWriterOptions['append'];
  private readonly maxQueued: number;
  private readonly onLost: AuditTopicWriterOptions['onLost'];
  private queue: AuditTopicMessage[] = [];
  private running: Promise<void> | null = null;
  private closed = false;

  constructor(options: AuditTopicWriterOptions) {
    this.append = options.append;
    this.maxQueued = options.maxQueued ?? DEFAULT_AUDIT_TOPIC_QUEUE;
    this.onLost = options.onLost;
  }

  /** Queues a record for the topic; returns at once (never throws). */
  forward(record: AuditRecord, line: string): void {
    if (this.closed) return;
    if (this.queue.length >= this.maxQueued) {
      this.dropped++;
      this.onLost?.(1, `the audit topic's queue is full (${this.maxQueued} records)`);
      return;
    }
    this.queue.push(auditTopicMessage(record, line));
    this.running ??= this.drain().finally(() => {
      this.running = null;
    });
  }

  /** Resolves once every record queued so far was written (or lost). */
  async flushed(): Promise<void> {
    while (this.running !== null) await this.running;
  }

  /** Writes what is queued, then takes no more records. */
  async close(): Promise<void> {
    await this.flushed();
    this.closed = true;
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, MAX_BATCH_RECORDS);
      try {
        await this.append(batch);
        this.written += batch.length;
      } catch (error) {
        this.failed += batch.length;
        this.onLost?.(batch.length, `writing to the audit topic failed: ${(error as Error).message}`);
      }
    }
  }
}
