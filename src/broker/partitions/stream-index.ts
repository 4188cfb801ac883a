// The streams of one partition: for every key, how many messages it has (its version, which the
// next message's sequence equals) and the offset of its first message. Derived from the log: it is
// rebuilt by scanning keys when the partition opens, and updated as batches are appended.
//
// Memory per stream is the key (as a one-byte-per-byte string) plus one small object with two
// numbers; see docs/storage.md for the measured figure. Offsets are kept as numbers (exact below
// 2^53, which a partition does not reach).

export class StreamEntry {
  constructor(
    public version: number,
    public firstOffset: number,
    public lastOffset: number,
  ) {}
}

export interface StreamUndo {
  entry: StreamEntry;
  key: string;
  version: number;
}

export function streamKeyOf(key: Buffer): string {
  return key.toString('latin1');
}

export class StreamIndex {
  private readonly streams = new Map<string, StreamEntry>();

  get size(): number {
    return this.streams.size;
  }

  get(key: string): StreamEntry | undefined {
    return this.streams.get(key);
  }

  version(key: string): number {
    return this.streams.get(key)?.version ?? 0;
  }

  /** Counts one message of `key` at `offset`; returns its sequence in the stream. */
  add(key: string, offset: number, undo?: StreamUndo[]): number {
    let entry = this.streams.get(key);
    if (entry === undefined) {
      entry = new StreamEntry(0, offset, offset);
      this.streams.set(key, entry);
    }
    undo?.push({ entry, key, version: entry.version });
    entry.lastOffset = offset;
    return entry.version++;
  }

  /**
   * Takes back messages whose append failed. Failures always take a suffix of appends, so going
   * back to the smallest version seen restores the state, in whatever order the undos run.
   */
  undo(records: readonly StreamUndo[]): void {
    for (const record of records) {
      if (record.version < record.entry.version) record.entry.version = record.version;
      if (record.entry.version === 0) this.streams.delete(record.key);
    }
  }
}
