// The producer snapshots of one partition directory over time (file format: producer-snapshot.ts;
// docs/producer-snapshots.md): writes them one at a time in the background of appends, keeps the
// newest few, deletes those that describe bytes that are gone or about to be, and picks the one an
// open or a truncation starts its replay from.

import {
  deleteSnapshot,
  deleteSnapshotsAbove,
  listSnapshots,
  type ProducerSnapshot,
  readSnapshot,
  writeSnapshot,
} from './producer-snapshot.js';

/** Producer snapshots kept per partition (the newest; older ones only cost disk). */
const KEPT_SNAPSHOTS = 3;

export class ProducerSnapshotStore {
  /** Snapshot writes, one at a time, in the background of appends. */
  private chain: Promise<void> = Promise.resolve();
  private lastOffset = -1n;
  /**
   * False once compaction rewrote a segment: the visible table still remembers batches compaction
   * dropped, so it no longer equals a replay of the log and is not saved (until the next open, whose
   * table is built from the compacted log).
   */
  private enabled = true;
  /** Snapshot writes or prunes that failed (they only cost replay time at the next open). */
  failures = 0;

  /** `logStartOffset` is asked at each prune (null: the log is closed, nothing is below its start). */
  constructor(
    readonly dir: string,
    private readonly logStartOffset: () => bigint | null,
    /** False for a log in memory (docs/storage.md, "Memory topics"): no snapshot is written or read. */
    private readonly persistent = true,
  ) {}

  /**
   * Saves `snapshot` after the writes queued before, unless one at its offset was saved already.
   * The entries must be a copy (they are written later); a failure only counts in `failures`.
   */
  saveInBackground(snapshot: ProducerSnapshot): Promise<void> {
    if (!this.persistent || !this.enabled || snapshot.offset === this.lastOffset) return this.chain;
    this.lastOffset = snapshot.offset;
    this.chain = this.chain.then(async () => {
      try {
        await writeSnapshot(this.dir, snapshot);
        // The newest few stay; older ones, and any below the log start (retention), go.
        const start = this.logStartOffset() ?? 0n;
        const offsets = await listSnapshots(this.dir);
        for (let i = 0; i < offsets.length; i++) {
          if (i >= KEPT_SNAPSHOTS || offsets[i]! < start) await deleteSnapshot(this.dir, offsets[i]!);
        }
      } catch {
        this.failures++;
      }
    });
    return this.chain;
  }

  /** Whether a snapshot at `offset` would be written (not saved already, snapshots enabled). */
  wouldSave(offset: bigint): boolean {
    return this.enabled && offset !== this.lastOffset;
  }

  /** Settles when the snapshot writes started so far are done. */
  written(): Promise<void> {
    return this.chain;
  }

  /**
   * Compaction is about to replace the sealed segment at `baseOffset`: every snapshot above it was
   * derived from the old bytes and is deleted durably before the swap commits (a snapshot could hold
   * batches compaction drops), and no snapshot is written any more (see `enabled`). Throwing here
   * stops the swap, which is the safe side.
   */
  async invalidateFrom(baseOffset: bigint): Promise<void> {
    this.enabled = false;
    await this.chain;
    if (this.persistent) await deleteSnapshotsAbove(this.dir, baseOffset);
  }

  /**
   * The newest valid snapshot to rebuild the tables from as of `upTo`: first every snapshot above
   * `discardAbove` is deleted durably (it describes bytes recovery cut off or a truncation removed,
   * and must not be trusted once appends bring the log end past it again); then the newest readable
   * one in `logStartOffset..upTo` is returned, or null (replay from the log start).
   */
  async newestUsable(options: {
    discardAbove: bigint;
    logStartOffset: bigint;
    upTo: bigint;
  }): Promise<ProducerSnapshot | null> {
    await this.chain;
    if (!this.persistent) return null;
    let snapshot: ProducerSnapshot | null = null;
    for (const offset of await deleteSnapshotsAbove(this.dir, options.discardAbove)) {
      if (offset >= options.logStartOffset && offset <= options.upTo)
        snapshot = await readSnapshot(this.dir, offset);
      if (snapshot !== null) break;
    }
    this.lastOffset = snapshot?.offset ?? -1n;
    return snapshot;
  }
}
