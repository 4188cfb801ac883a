// The regression gate's decision, as a pure function of the measured rounds (no I/O, no clock):
// given each round's figures for the base (A) and the candidate (B), a verdict per metric.
//
// The rule, per metric:
//   ratio_i   = B_i ÷ A_i for each alternating pair i (round i measured A and B back to back, in
//               alternating order, so a drift of the machine hits both sides of a pair alike);
//   noise     = the larger of A's and B's own spread: (max − min) ÷ median of that side's rounds —
//               how far the same code moved between rounds of this very run;
//   tolerance = max(noise, the metric's floor) — the floor (throughput 10%, latency P99 25%) keeps
//               a run whose rounds happened to agree closely from failing on a few percent;
//   FAIL      when the median ratio is worse than the tolerance (throughput: below 1 − tolerance;
//               latency: above 1 + tolerance) AND every pair is worse (a sign rule: with no real
//               change each pair is worse with probability ½, so all n pairs by chance is 2⁻ⁿ, and
//               that on top of a median beyond the run's own spread).
// One wild round moves neither the median nor, alone, the sign of the other pairs, so it cannot
// fail the gate; a real slowdown moves every pair. A median beyond the tolerance whose pairs
// disagree is reported as `unsure` (not a failure); a consistent gain beyond it as `better`.
//
// Confirmation (decideConfirmed): 1 in 8 for three pairs is the rate at which a figure whose pairs
// swing by tens of percent (the `always` ack P99 follows the disk's fdatasync) fails unchanged
// code, so a failure of the first rounds is a suspicion: as many rounds again are measured and the
// rule is applied to all of them together. Unchanged code then fails only if all six pairs fall on
// the worse side (1 in 64) beyond the whole run's noise; a real slowdown keeps every pair worse.

export type Direction = 'higher-is-better' | 'lower-is-better';

export interface MetricSpec {
  /** The key in a measurement (bench/ab/measure.ts `gate`). */
  name: string;
  direction: Direction;
  /** The least tolerance, as a fraction (0.1 = 10%). */
  floor: number;
}

export type Verdict = 'pass' | 'better' | 'unsure' | 'FAIL';

export interface MetricVerdict {
  name: string;
  direction: Direction;
  aMedian: number;
  bMedian: number;
  /** B ÷ A of each pair, in round order. */
  ratios: number[];
  /** Median of the pair ratios. */
  ratio: number;
  /** Relative spread of A's and of B's own rounds, and the larger of the two. */
  noiseA: number;
  noiseB: number;
  noise: number;
  tolerance: number;
  /** Pairs on the worse side of 1. */
  pairsWorse: number;
  verdict: Verdict;
}

export interface GateDecision {
  metrics: MetricVerdict[];
  /** True when no metric failed. */
  passed: boolean;
}

export type Rounds = ReadonlyArray<{
  A: Readonly<Record<string, number>>;
  B: Readonly<Record<string, number>>;
}>;

/** Throughput floor 10%, latency P99 floor 25%: what the gate measures and how much it forgives. */
export const GATE_METRICS: readonly MetricSpec[] = [
  { name: 'produce msg/s', direction: 'higher-is-better', floor: 0.1 },
  { name: 'replay msg/s', direction: 'higher-is-better', floor: 0.1 },
  { name: 'e2e p99 µs', direction: 'lower-is-better', floor: 0.25 },
  { name: 'always ack p99 µs', direction: 'lower-is-better', floor: 0.25 },
  { name: 'frame decode frames/s', direction: 'higher-is-better', floor: 0.1 },
];

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** (max − min) ÷ median: the spread of one side's rounds relative to its level. */
export function relativeSpread(values: readonly number[]): number {
  const mid = median(values);
  if (mid === 0) return 0;
  return (Math.max(...values) - Math.min(...values)) / Math.abs(mid);
}

function figureOf(
  side: Readonly<Record<string, number>>,
  name: string,
  round: number,
  label: string,
): number {
  const value = side[name];
  if (value === undefined || !Number.isFinite(value) || value <= 0)
    throw new Error(`round ${round + 1}: ${label} has no positive figure for '${name}'`);
  return value;
}

export function decideMetric(rounds: Rounds, spec: MetricSpec): MetricVerdict {
  if (rounds.length < 2)
    throw new Error(`the gate needs at least 2 rounds to measure noise, got ${rounds.length}`);
  const a = rounds.map((r, i) => figureOf(r.A, spec.name, i, 'A'));
  const b = rounds.map((r, i) => figureOf(r.B, spec.name, i, 'B'));
  const ratios = a.map((value, i) => b[i]! / value);
  const ratio = median(ratios);
  const noiseA = relativeSpread(a);
  const noiseB = relativeSpread(b);
  const noise = Math.max(noiseA, noiseB);
  const tolerance = Math.max(noise, spec.floor);
  const higher = spec.direction === 'higher-is-better';
  const worse = (r: number) => (higher ? r < 1 : r > 1);
  const better = (r: number) => (higher ? r > 1 : r < 1);
  const beyondWorse = higher ? ratio < 1 - tolerance : ratio > 1 + tolerance;
  const beyondBetter = higher ? ratio > 1 + tolerance : ratio < 1 - tolerance;
  const pairsWorse = ratios.filter(worse).length;
  let verdict: Verdict = 'pass';
  if (beyondWorse) verdict = pairsWorse === ratios.length ? 'FAIL' : 'unsure';
  else if (beyondBetter && ratios.every(better)) verdict = 'better';
  return {
    name: spec.name,
    direction: spec.direction,
    aMedian: median(a),
    bMedian: median(b),
    ratios,
    ratio,
    noiseA,
    noiseB,
    noise,
    tolerance,
    pairsWorse,
    verdict,
  };
}

export function decideGate(rounds: Rounds, specs: readonly MetricSpec[] = GATE_METRICS): GateDecision {
  const metrics = specs.map((spec) => decideMetric(rounds, spec));
  return { metrics, passed: metrics.every((m) => m.verdict !== 'FAIL') };
}

/** The gate's decision after confirmation: the figures that failed the first rounds, if any. */
export interface ConfirmedDecision extends GateDecision {
  /** Figures that failed the first rounds (and so caused the confirmation rounds); empty if none. */
  suspected: string[];
  /** How many rounds the final decision covers (the first ones, or those and the confirmation's). */
  decidedRounds: number;
}

/**
 * Decides on `first`; when a figure fails, measures `more()` (as many rounds again) and decides on
 * all the rounds together. `more` is only called on a failure, so a passing run costs nothing extra.
 */
export function decideConfirmed(
  first: Rounds,
  more: (suspected: readonly string[]) => Rounds,
  specs: readonly MetricSpec[] = GATE_METRICS,
): ConfirmedDecision {
  const initial = decideGate(first, specs);
  if (initial.passed) return { ...initial, suspected: [], decidedRounds: first.length };
  const suspected = initial.metrics.filter((m) => m.verdict === 'FAIL').map((m) => m.name);
  const all = [...first, ...more(suspected)];
  // A failure needs both decisions: a figure that passed the first rounds and only fails over all
  // of them was not confirmed, it is `unsure`.
  const metrics = decideGate(all, specs).metrics.map(
    (m): MetricVerdict =>
      m.verdict === 'FAIL' && !suspected.includes(m.name) ? { ...m, verdict: 'unsure' } : m,
  );
  return {
    metrics,
    passed: metrics.every((m) => m.verdict !== 'FAIL'),
    suspected,
    decidedRounds: all.length,
  };
}
