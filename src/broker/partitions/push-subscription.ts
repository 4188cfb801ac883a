// A push subscription with credit-based flow control: the broker sends whole batches while the
// consumer's byte credit covers them, and waits for more credit otherwise. A batch larger than the
// whole window the subscriber opened with is still sent once all of the window is back (nothing
// of it outstanding), as a Kafka fetch returns at least one batch whatever its size limit: credit
// that could never cover it would stop the partition for good. A caught-up subscriber
// gets new batches straight from the append path (the in-memory tail), not from a file read.
// The transport can also hold delivery (`pauseDelivery`) while the bytes it already queued towards
// the client are over its memory budget, whatever credit is left; it resumes from the log.

import type { PartitionLog } from '../../storage/partition-log.js';
import { sharedReads } from './read-scheduler.js';

/** Receives pushed data: whole batches, and the high watermark after them. */
export type PushSink = (batches: readonly Buffer[], highWatermark: bigint) => void;

const CATCH_UP_READ_BYTES = 1024 * 1024;

export class PushSubscription {
  private position: bigint;
  /** Bytes the subscriber can take: its window less what was pushed and not granted back (may go below 0). */
  private credit: number;
  /** The credit the subscription opened with: the subscriber's whole window. */
  private readonly window: number;
  private pumping = false;
  private again = false;
  private held = false;
  closed = false;

  constructor(
    private readonly log: PartitionLog,
    offset: bigint,
    credit: number,
    private readonly sink: PushSink,
    private readonly onError: (error: Error) => void,
    private readonly detach: () => void,
  ) {
    this.position = offset;
    this.credit = credit;
    this.window = credit;
  }

  /** Whether `bytes` may be pushed now: the credit covers them, or they are more than the whole window and all of it is back. */
  private covers(bytes: number): boolean {
    return bytes <= this.credit || (bytes > this.window && this.credit >= this.window);
  }

  get offset(): bigint {
    return this.position;
  }

  /** Credit granted and not yet used by pushes. */
  get availableCredit(): number {
    return this.credit;
  }

  grant(bytes: number): void {
    this.credit += bytes;
    this.pump();
  }

  /** Stops pushing (also from the append path) until `resumeDelivery`; what was pushed stays pushed. */
  pauseDelivery(): void {
    this.held = true;
  }

  get deliveryPaused(): boolean {
    return this.held;
  }

  resumeDelivery(): void {
    if (!this.held) return;
    this.held = false;
    this.pump();
  }

  onAppended(batches: readonly Buffer[], highWatermark: bigint): void {
    if (this.closed || this.held) return;
    const first = batches[0];
    if (!this.pumping && first !== undefined && first.readBigInt64BE(0) === this.position) {
      let bytes = 0;
      for (const batch of batches) bytes += batch.length;
      if (this.covers(bytes)) {
        this.credit -= bytes;
        this.position = highWatermark;
        this.deliver(batches, highWatermark);
        return;
      }
    }
    this.pump();
  }

  /** Catches up from the log while credit lasts; coalesces concurrent calls into one loop. */
  pump(): void {
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    void this.catchUp().finally(() => {
      this.pumping = false;
      if (this.again && !this.closed) {
        this.again = false;
        this.pump();
      }
    });
  }

  private async catchUp(): Promise<void> {
    const log = this.log;
    while (!this.closed && !this.held && this.credit > 0 && this.position < log.highWatermark) {
      let result: Awaited<ReturnType<PartitionLog['read']>>;
      try {
        // Catch-up reads take turns with other clients' reads (read-scheduler.ts).
        await sharedReads.acquire(this);
      } catch {
        return; // Closed while waiting for its turn.
      }
      try {
        if (this.closed) return;
        result = await log.read(this.position, Math.min(this.credit, CATCH_UP_READ_BYTES));
      } catch (error) {
        // Retention removed the data, or the log closed: the subscription ends with the reason.
        this.fail(error);
        return;
      } finally {
        sharedReads.release();
      }
      if (result.data.length === 0 || !this.covers(result.data.length) || this.closed || this.held) return;
      this.credit -= result.data.length;
      this.position = result.nextOffset;
      this.deliver([result.data], result.highWatermark);
    }
  }

  /**
   * Hands batches to the sink. A sink that throws (a transport that cannot take them) ends this
   * subscription with its error, which the subscriber is told; it does not reach the append path
   * that called it (the other subscriptions of the partition still get the batches) nor become an
   * unhandled rejection of the catch-up loop.
   */
  private deliver(batches: readonly Buffer[], highWatermark: bigint): void {
    try {
      this.sink(batches, highWatermark);
    } catch (error) {
      this.fail(error);
    }
  }

  /** Ends the subscription and tells the subscriber why (an onError that throws changes nothing). */
  private fail(error: unknown): void {
    this.close();
    try {
      this.onError(error instanceof Error ? error : new Error(String(error)));
    } catch {
      // The subscriber's handler failing leaves nothing more to tell it.
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    sharedReads.cancel(this);
    this.detach();
  }
}
