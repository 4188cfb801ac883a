// Counts partition leader elections for the controller's metrics, from the metadata watch: a
// partition that gets a leader at a newer leader epoch than this broker saw before had a leader
// elected (a new partition's first leader included; a partition going offline is not an election,
// its return is). Counted only while this broker is the controller, so the cluster's total is the
// sum over brokers without double counting. Unclean elections come from the controller's own
// reconcile result, which knows the rule it applied.

import type { MetadataCache, MetadataEvent } from './control-plane/metadata-cache.js';
import { parsePartitionKey } from './control-plane/metadata-keys.js';
import { NO_LEADER } from './control-plane/metadata-records.js';

export class LeaderElectionCounter {
  private readonly epochs = new Map<string, number>();
  private seeded = false;
  private electionsValue = 0;
  private uncleanValue = 0;

  get elections(): number {
    return this.electionsValue;
  }

  get uncleanElections(): number {
    return this.uncleanValue;
  }

  /**
   * After the cache applied `events` (the first call, the cache's initial load, only records what
   * it sees). `controller`: this broker holds the controller role now.
   */
  observe(cache: MetadataCache, events: readonly MetadataEvent[], controller: boolean): void {
    const counting = this.seeded && controller;
    this.seeded = true;
    for (const event of events) {
      const parsed = parsePartitionKey(event.key);
      if (parsed === null) continue;
      const state = event.type === 'put' ? cache.partition(parsed[0], parsed[1])?.value : undefined;
      if (state === undefined) {
        this.epochs.delete(event.key);
        continue;
      }
      const before = this.epochs.get(event.key);
      this.epochs.set(event.key, state.leaderEpoch);
      if (counting && state.leader !== NO_LEADER && (before === undefined || state.leaderEpoch > before))
        this.electionsValue++;
    }
  }

  /** Unclean elections a reconcile of this controller wrote. */
  addUnclean(count: number): void {
    this.uncleanValue += count;
  }
}
