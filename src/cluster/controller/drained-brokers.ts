// The brokers an operator drained (broker drain): kept in the control plane under
// `drained-brokers` as { "brokers": [ids] }, so a drain outlives controller changes. Every
// cluster member keeps this copy current from the same snapshot and watch as its metadata cache.

import type { MetadataEvent } from '../control-plane/metadata-cache.js';
import { KEYS } from '../control-plane/metadata-keys.js';

export class DrainedBrokers {
  private idsValue: ReadonlySet<number> = new Set();
  private modRevisionValue = 0n;
  /** Why the stored value was not understood, if it was not (then no broker counts as drained). */
  problem: string | null = null;

  get ids(): ReadonlySet<number> {
    return this.idsValue;
  }

  /** The key's mod revision (0n: absent): what a compare-and-swap write of it names. */
  get modRevision(): bigint {
    return this.modRevisionValue;
  }

  /** Replaces the copy with a snapshot's events. */
  load(events: readonly MetadataEvent[]): void {
    this.set([], 0n);
    this.apply(events);
  }

  /** Applies watch events (other keys are ignored). */
  apply(events: readonly MetadataEvent[]): void {
    for (const event of events) {
      if (event.key !== KEYS.drainedBrokers || event.modRevision < this.modRevisionValue) continue;
      this.set(
        event.type === 'put' ? decodeDrained(event.value) : [],
        event.type === 'put' ? event.modRevision : 0n,
      );
    }
  }

  /** What this controller just wrote, before the watch brings it back. */
  set(ids: readonly number[] | null, modRevision: bigint): void {
    this.modRevisionValue = modRevision;
    this.problem = ids === null ? `${KEYS.drainedBrokers}: not { "brokers": [broker ids] }` : null;
    this.idsValue = new Set(ids ?? []);
  }
}

export function encodeDrained(ids: Iterable<number>): string {
  return JSON.stringify({ brokers: [...new Set(ids)].sort((a, b) => a - b) });
}

function decodeDrained(bytes: Buffer): number[] | null {
  try {
    const value = JSON.parse(bytes.toString('utf8')) as { brokers?: unknown };
    const brokers = value.brokers;
    if (!Array.isArray(brokers)) return null;
    if (!brokers.every((id): id is number => Number.isSafeInteger(id) && (id as number) >= 0)) return null;
    return brokers;
  } catch {
    return null;
  }
}
