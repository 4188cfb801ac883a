// The invariants of replication, checked as a simulation runs (and usable on any recorded history
// of the same events):
// - committed records are never lost or changed: everything below any leader's high watermark is
//   the committed log, every later leader holds it when elected, and the final leader holds it;
// - every acks=all acknowledgement names a committed record, and it is still there at the end;
// - every replica's log below its own high watermark is the committed log (replicas identical);
// - offsets are dense (an append lands exactly at the log end; the simulator reports otherwise);
// - a leader's high watermark never moves backwards within its epoch;
// - no two brokers accept writes in the same leader epoch.

export interface LogEntry {
  readonly epoch: number;
  readonly value: number;
}

export class ReplicationChecker {
  readonly violations: string[] = [];
  /** The longest prefix any leader's high watermark has covered. */
  private readonly committed: LogEntry[] = [];
  private readonly highWatermarkByEpoch = new Map<number, number>();
  private readonly writerByEpoch = new Map<number, number>();
  private readonly leaderByEpoch = new Map<number, number | null>();
  private readonly ackedAll = new Map<number, number>(); // offset → value

  get committedLength(): number {
    return this.committed.length;
  }

  violation(message: string): void {
    this.violations.push(message);
  }

  onControllerState(epoch: number, leader: number | null): void {
    const previous = this.leaderByEpoch.get(epoch);
    if (previous !== undefined && previous !== null && leader !== null && previous !== leader)
      this.violation(`controller named leaders ${previous} and ${leader} in epoch ${epoch}`);
    if (previous === undefined || previous === null) this.leaderByEpoch.set(epoch, leader);
  }

  onBecomeLeader(broker: number, epoch: number, log: readonly LogEntry[]): void {
    const missing = this.firstDifference(log, this.committed.length);
    if (missing !== null)
      this.violation(
        `broker ${broker} became leader of epoch ${epoch} without committed offset ${missing} (committed ${this.committed.length}, its log ${log.length})`,
      );
  }

  onLeaderAppend(broker: number, epoch: number): void {
    const writer = this.writerByEpoch.get(epoch);
    if (writer === undefined) this.writerByEpoch.set(epoch, broker);
    else if (writer !== broker)
      this.violation(`brokers ${writer} and ${broker} both accepted writes in epoch ${epoch}`);
  }

  onLeaderHighWatermark(
    broker: number,
    epoch: number,
    highWatermark: number,
    log: readonly LogEntry[],
  ): void {
    const previous = this.highWatermarkByEpoch.get(epoch) ?? 0;
    if (highWatermark < previous)
      this.violation(`high watermark of epoch ${epoch} went back from ${previous} to ${highWatermark}`);
    this.highWatermarkByEpoch.set(epoch, Math.max(previous, highWatermark));
    if (highWatermark > log.length) {
      this.violation(`leader ${broker} high watermark ${highWatermark} above its log end ${log.length}`);
      return;
    }
    const changed = this.firstDifference(log, Math.min(highWatermark, this.committed.length));
    if (changed !== null) {
      this.violation(
        `leader ${broker} (epoch ${epoch}) high watermark ${highWatermark} covers offset ${changed}, which differs from the committed record`,
      );
      return;
    }
    for (let offset = this.committed.length; offset < highWatermark; offset++)
      this.committed.push(log[offset]!);
  }

  onFollowerHighWatermark(broker: number, highWatermark: number, log: readonly LogEntry[]): void {
    if (highWatermark > this.committed.length) {
      this.violation(
        `follower ${broker} high watermark ${highWatermark} above anything committed (${this.committed.length})`,
      );
      return;
    }
    const changed = this.firstDifference(log, highWatermark);
    if (changed !== null)
      this.violation(
        `follower ${broker} differs from the committed log at offset ${changed}, below its high watermark`,
      );
  }

  onAckedAll(value: number, offset: number): void {
    const entry = this.committed[offset];
    if (entry === undefined || entry.value !== value)
      this.violation(
        `acks=all acknowledged value ${value} at offset ${offset}, which is not committed there`,
      );
    this.ackedAll.set(offset, value);
  }

  /** After healing: the leader holds the committed log and every acknowledged record. */
  onFinal(
    leader: number,
    leaderLog: readonly LogEntry[],
    replicas: readonly { id: number; log: readonly LogEntry[]; highWatermark: number }[],
  ): void {
    const missing = this.firstDifference(leaderLog, this.committed.length);
    if (missing !== null) this.violation(`final leader ${leader} lost committed offset ${missing}`);
    for (const [offset, value] of this.ackedAll)
      if (leaderLog[offset]?.value !== value)
        this.violation(`acknowledged value ${value} at offset ${offset} is not in the final leader's log`);
    for (const replica of replicas) {
      const changed = this.firstDifference(
        replica.log,
        Math.min(replica.highWatermark, this.committed.length),
      );
      if (changed !== null)
        this.violation(`replica ${replica.id} differs below its high watermark at ${changed}`);
    }
  }

  /** The first offset below `length` where `log` is not the committed log, or null. */
  private firstDifference(log: readonly LogEntry[], length: number): number | null {
    for (let offset = 0; offset < length; offset++) {
      const entry = log[offset];
      const committed = this.committed[offset]!;
      if (entry === undefined || entry.epoch !== committed.epoch || entry.value !== committed.value)
        return offset;
    }
    return null;
  }
}
