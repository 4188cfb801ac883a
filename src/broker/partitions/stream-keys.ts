// The stream keys of one batch's records, in record order: what the stream index counts when the
// batch is appended. The leader collects them while it validates the batch (one pass, a compressed
// batch inflated once); a batch that arrives already validated (a follower's copy of the leader's
// batch) has them read from its bytes. Both give the same keys.

import { forEachKey, type InflateLimits } from '../../protocol/record-batch.js';
import { StreamIndex } from '../../storage/stream-index.js';

export class StreamKeys {
  /**
   * Each record's stream key (StreamIndex.keyOf), null for a record without a key; empty when no
   * record has a key (most batches: a keyless batch then costs no array entry per record).
   */
  readonly keys: (string | null)[] = [];
  /** Each record's offset delta, where `keys` has a key (-1 for the keyless records before the first key). */
  readonly deltas: number[] = [];
  /** Whether any record has a key. */
  keyed = false;
  /** Whether any record has no key. */
  hasKeyless = false;
  /** Keyless records seen before the first key, not yet in `keys`. */
  private keylessBeforeFirstKey = 0;

  /** Takes one record's key; pass it as the key visitor of validateRecordBatch or forEachKey. */
  readonly visit = (key: Buffer | null, offsetDelta: number): void => {
    if (key === null) {
      this.hasKeyless = true;
      if (!this.keyed) {
        this.keylessBeforeFirstKey++;
        return;
      }
      this.keys.push(null);
      this.deltas.push(offsetDelta);
      return;
    }
    if (!this.keyed) {
      this.keyed = true;
      for (let i = 0; i < this.keylessBeforeFirstKey; i++) {
        this.keys.push(null);
        this.deltas.push(-1);
      }
    }
    this.keys.push(StreamIndex.keyOf(key));
    this.deltas.push(offsetDelta);
  };

  /**
   * Empties it for the next batch. A partition reuses one for every produce (it is read only
   * synchronously, before produce returns): an object, two arrays and a closure less per append.
   */
  reset(): void {
    this.keys.length = 0;
    this.deltas.length = 0;
    this.keyed = false;
    this.hasKeyless = false;
    this.keylessBeforeFirstKey = 0;
  }

  /** The keys of a batch read from its bytes. */
  static of(batch: Buffer, limits: InflateLimits): StreamKeys {
    const keys = new StreamKeys();
    forEachKey(batch, limits, keys.visit);
    return keys;
  }
}
