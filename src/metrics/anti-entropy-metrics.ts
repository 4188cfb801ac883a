// Anti-entropy metrics of a cluster member (docs/replication.md, "Anti-entropy"): running totals of
// the comparisons its followers made with their leaders and of the segments they repaired. Read
// from the cluster layer at each scrape; registered only when the broker joins a cluster.

import { Counter, type Registry } from 'prom-client';

/** What the anti-entropy service counts (AntiEntropyTotals). */
export interface AntiEntropyCounts {
  readonly checks: number;
  readonly segmentsCompared: number;
  readonly segmentsDiffering: number;
  readonly segmentsRepaired: number;
  readonly bytesRepaired: number;
  readonly failures: number;
}

/** Names of every series registered here (the docs list them). */
export const ANTI_ENTROPY_METRIC_NAMES = [
  'memorystreamer_anti_entropy_checks_total',
  'memorystreamer_anti_entropy_segments_compared_total',
  'memorystreamer_anti_entropy_segments_differing_total',
  'memorystreamer_anti_entropy_segments_repaired_total',
  'memorystreamer_anti_entropy_repaired_bytes_total',
  'memorystreamer_anti_entropy_failures_total',
] as const;

const HELP: Record<(typeof ANTI_ENTROPY_METRIC_NAMES)[number], [keyof AntiEntropyCounts, string]> = {
  memorystreamer_anti_entropy_checks_total: [
    'checks',
    'comparisons of a followed partition with its leader (one per partition per round)',
  ],
  memorystreamer_anti_entropy_segments_compared_total: [
    'segmentsCompared',
    'sealed segments whose digest this follower compared with its leader',
  ],
  memorystreamer_anti_entropy_segments_differing_total: [
    'segmentsDiffering',
    "sealed segments whose bytes here differed from the leader's",
  ],
  memorystreamer_anti_entropy_segments_repaired_total: [
    'segmentsRepaired',
    "sealed segments rewritten here with the leader's verified bytes",
  ],
  memorystreamer_anti_entropy_repaired_bytes_total: [
    'bytesRepaired',
    'bytes of sealed segments fetched from leaders and written here by repairs',
  ],
  memorystreamer_anti_entropy_failures_total: [
    'failures',
    'comparisons or repairs that failed (leader unreachable, bytes that did not verify)',
  ],
};

/** Registers the series, reading `counts` at each scrape; a later call replaces an earlier source. */
export function registerAntiEntropyMetrics(registry: Registry, counts: () => AntiEntropyCounts): void {
  for (const name of ANTI_ENTROPY_METRIC_NAMES) {
    const [field, help] = HELP[name];
    registry.removeSingleMetric(name);
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        const total = counts()[field];
        if (total > 0) this.inc(total);
      },
    });
  }
}
