// The pure parts of the hostile-client battery: latency summaries, stalls, the memory rules and the
// loss checker. No sockets, no timers, no /proc: test/battery/checks.test.ts feeds them seeded
// anomalies to show each check can fail, and scripts/hostile-battery.ts applies them to a live run.

export const MiB = 1024 * 1024;

/** One pass/fail line of the battery's output. */
export interface CheckResult {
  name: string;
  pass: boolean;
  /** The measured figure and the bound it was held against, in words. */
  detail: string;
}

export function check(name: string, pass: boolean, detail: string): CheckResult {
  return { name, pass, detail };
}

// ---------------------------------------------------------------------------------------------
// Latencies and stalls

export interface LatencySummary {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentile of an ascending array (NaN when empty). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function summarize(samples: readonly number[]): LatencySummary {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    count: sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.length === 0 ? Number.NaN : sorted[sorted.length - 1]!,
  };
}

/** An operation due at `due` (ms) that completed at `done`, or had not completed (null). */
export interface Operation {
  due: number;
  done: number | null;
}

/**
 * The longest time any operation waited: completed ones by their latency, unfinished ones by how
 * long they had been waiting at `now`. Counting the unfinished is what makes a client that got no
 * answer at all (the worst stall) show up as one instead of as an absence of samples.
 */
export function longestStall(operations: Iterable<Operation>, now: number): number {
  let longest = 0;
  for (const op of operations) {
    const waited = (op.done ?? now) - op.due;
    if (waited > longest) longest = waited;
  }
  return longest;
}

// ---------------------------------------------------------------------------------------------
// Memory rules

export interface RssRule {
  /** RSS of the idle broker at start (after its first clients connected), bytes. */
  idleRss: number;
  /** The configured global budget (server.global_budget), bytes. */
  globalBudget: number;
  /** Stated fixed overhead: what the broker may use beyond its budget (heap, per-connection objects). */
  fixedOverhead: number;
  /**
   * Durable state the attack may create and the broker keeps by design (e.g. partitions, bounded
   * by topics.max_partitions × their measured cost); 0 for attacks that create none.
   */
  stateBytes?: number;
}

/** The ceiling the broker's RSS must stay under during an attack: idle RSS + budget + overhead (+ state). */
export function rssCeiling(rule: RssRule): number {
  return rule.idleRss + rule.globalBudget + rule.fixedOverhead + (rule.stateBytes ?? 0);
}

export function checkRssPeak(rule: RssRule, peak: number): CheckResult {
  const ceiling = rssCeiling(rule);
  return check(
    'rss peak within budget',
    peak <= ceiling,
    `peak ${mib(peak)} MiB; ceiling ${mib(ceiling)} MiB = idle ${mib(rule.idleRss)} + global budget ${mib(rule.globalBudget)} + overhead ${mib(rule.fixedOverhead)}` +
      (rule.stateBytes ? ` + state ${mib(rule.stateBytes)}` : ''),
  );
}

/** The RSS that counts as "memory returned" after an attack: the pre-attack RSS plus a margin. */
export function rssReturnTarget(baseline: number, margin: number): number {
  return baseline + margin;
}

/**
 * Whether RSS came back: the first sample at or under the target within `withinMs` of the attack's
 * end. `samples` are (ms since the attack ended, RSS bytes) in time order.
 */
export function checkRssReturn(
  baseline: number,
  margin: number,
  withinMs: number,
  samples: ReadonlyArray<{ at: number; rss: number }>,
): CheckResult {
  const target = rssReturnTarget(baseline, margin);
  const back = samples.find((s) => s.at <= withinMs && s.rss <= target);
  const last = samples.length > 0 ? samples[samples.length - 1]!.rss : Number.NaN;
  return check(
    'rss returns after the attack',
    back !== undefined,
    back !== undefined
      ? `${mib(back.rss)} MiB after ${(back.at / 1000).toFixed(1)} s; target ${mib(target)} MiB = pre-attack ${mib(baseline)} + ${mib(margin)} within ${withinMs / 1000} s`
      : `still ${mib(last)} MiB after ${withinMs / 1000} s; target ${mib(target)} MiB = pre-attack ${mib(baseline)} + ${mib(margin)}`,
  );
}

export function mib(bytes: number): string {
  return Number.isFinite(bytes) ? (bytes / MiB).toFixed(1) : '?';
}

// ---------------------------------------------------------------------------------------------
// The loss checker

/** A message the broker acknowledged: its offset and the exact bytes sent. */
export interface Acknowledged {
  offset: bigint;
  payload: Buffer;
}

/** A record read back from the partition (any producer's). */
export interface ReadRecord {
  offset: bigint;
  payload: Buffer | null;
}

export type AnomalyKind = 'lost' | 'changed' | 'duplicate-offset' | 'duplicate-payload';

export interface Anomaly {
  kind: AnomalyKind;
  offset: bigint;
  detail: string;
}

export interface LossReport {
  acknowledged: number;
  readBack: number;
  anomalies: Anomaly[];
}

/**
 * Compares what was acknowledged with what a read from the start of the partition returned:
 *  - lost: an acknowledged offset is absent;
 *  - changed: the record at an acknowledged offset holds other bytes;
 *  - duplicate-offset: two records came back at one offset (offsets must be dense and unique);
 *  - duplicate-payload: an acknowledged payload (each is unique) appears at more than one offset.
 * Records at offsets nobody acknowledged (attackers', or sends whose answer was lost) are allowed
 * unless they duplicate an acknowledged payload.
 */
export function checkAcknowledged(
  acknowledged: readonly Acknowledged[],
  readBack: readonly ReadRecord[],
): LossReport {
  const anomalies: Anomaly[] = [];
  const byOffset = new Map<bigint, ReadRecord>();
  for (const record of readBack) {
    if (byOffset.has(record.offset)) {
      anomalies.push({
        kind: 'duplicate-offset',
        offset: record.offset,
        detail: `two records at offset ${record.offset}`,
      });
    } else {
      byOffset.set(record.offset, record);
    }
  }
  const ackedPayloads = new Map<string, bigint>();
  for (const ack of acknowledged) ackedPayloads.set(ack.payload.toString('base64'), ack.offset);
  const seenAt = new Map<string, bigint>();
  for (const record of readBack) {
    if (record.payload === null) continue;
    const key = record.payload.toString('base64');
    if (!ackedPayloads.has(key)) continue;
    const earlier = seenAt.get(key);
    if (earlier !== undefined && earlier !== record.offset) {
      anomalies.push({
        kind: 'duplicate-payload',
        offset: record.offset,
        detail: `the payload acknowledged at ${ackedPayloads.get(key)} is also at ${earlier} and ${record.offset}`,
      });
    } else {
      seenAt.set(key, record.offset);
    }
  }
  for (const ack of acknowledged) {
    const found = byOffset.get(ack.offset);
    if (found === undefined) {
      anomalies.push({
        kind: 'lost',
        offset: ack.offset,
        detail: `acknowledged offset ${ack.offset} is missing`,
      });
    } else if (found.payload === null || !found.payload.equals(ack.payload)) {
      anomalies.push({
        kind: 'changed',
        offset: ack.offset,
        detail: `offset ${ack.offset} holds ${found.payload === null ? 'null' : `${found.payload.length} other bytes`} instead of the ${ack.payload.length} acknowledged`,
      });
    }
  }
  return { acknowledged: acknowledged.length, readBack: readBack.length, anomalies };
}

/** The loss check as a pass/fail line (the first few anomalies named). */
export function lossCheck(report: LossReport): CheckResult {
  const counts = new Map<AnomalyKind, number>();
  for (const a of report.anomalies) counts.set(a.kind, (counts.get(a.kind) ?? 0) + 1);
  const summary = [...counts].map(([kind, n]) => `${n} ${kind}`).join(', ');
  return check(
    'every acknowledged message read back byte-identical at its offset',
    report.anomalies.length === 0,
    report.anomalies.length === 0
      ? `${report.acknowledged} acknowledged, ${report.readBack} records read back`
      : `${summary} (of ${report.acknowledged} acknowledged); first: ${report.anomalies
          .slice(0, 3)
          .map((a) => a.detail)
          .join('; ')}`,
  );
}
