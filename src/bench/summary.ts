// The human summary of a run: what ran, throughput, latency percentiles and CPU, as aligned tables.

import type { LatencySummary } from './histograms.js';
import type { BenchReport, ThreadFigures, ThroughputFigures } from './report.js';

const integer = (n: number) => Math.round(n).toLocaleString('en-US');

/** Microseconds as µs below 1 ms, as ms below 10 s, else as s. */
export function formatMicros(us: number): string {
  if (us < 1000) return `${us} µs`;
  if (us < 10_000_000) return `${(us / 1000).toFixed(us < 100_000 ? 2 : 1)} ms`;
  return `${(us / 1e6).toFixed(1)} s`;
}

/** Columns after the first are right-aligned (they hold figures). */
function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]) =>
    cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  return [line(headers), ...rows.map(line)].join('\n');
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

function header(report: BenchReport): string {
  const s = report.settings;
  const broker = { embedded: 'embedded broker', spawn: 'spawned broker', external: 'broker' }[report.mode];
  const bound =
    s.messages !== null
      ? `${integer(s.messages)} messages`
      : `${s.durationS} s${report.interrupted ? ' (interrupted)' : ''}`;
  return [
    `memorystreamer bench: ${broker} ${report.brokers.join(',')}, ${plural(s.topics, 'topic')} × ${plural(s.partitions, 'partition')}, ${plural(s.producers, 'producer')}, ${plural(s.consumers, 'consumer')}`,
    `  ${s.size}-byte values${s.streams > 0 ? ` over ${integer(s.streams)} keys` : ''}, ${s.rate === null ? 'max rate' : `${integer(s.rate)} msg/s (${s.pacing} pacing)`}, ${bound} measured after ${s.warmupS} s warmup`,
    `  acks ${s.acks}, durability ${s.durability}, compression ${s.compression}, batch ${integer(s.batchBytes)} B, linger ${s.lingerMs} ms`,
  ].join('\n');
}

function throughputRow(name: string, f: ThroughputFigures): string[] {
  return [name, integer(f.messages), integer(f.msgPerSec), f.mbPerSec.toFixed(2), f.seconds.toFixed(2)];
}

function latencyRow(name: string, l: LatencySummary | null): string[] {
  if (l === null) return [name, '-', '-', '-', '-', '-', '0'];
  return [
    name,
    formatMicros(l.p50),
    formatMicros(l.p90),
    formatMicros(l.p99),
    formatMicros(l.p999),
    formatMicros(l.max),
    integer(l.count),
  ];
}

function sum(values: readonly (number | null)[]): string {
  if (values.length === 0 || values.some((v) => v === null)) return '-';
  return (values as number[]).reduce((a, b) => a + b, 0).toFixed(2);
}

function cpuRow(name: string, threads: readonly ThreadFigures[]): string[] {
  const elu = threads.map((t) => t.eventLoopUtilization.toFixed(2)).join(' ');
  return [name, sum(threads.map((t) => t.cores)), elu];
}

export function renderSummary(report: BenchReport): string {
  const sections = [header(report)];
  const throughputRows = [throughputRow('produce', report.produce)];
  if (report.consume !== null) throughputRows.push(throughputRow('consume', report.consume));
  sections.push(table(['throughput', 'messages', 'msg/s', 'MB/s', 'seconds'], throughputRows));
  const latencyRows = [latencyRow('publish→ack', report.latencyUs.publishToAck)];
  if (report.consume !== null) latencyRows.push(latencyRow('end-to-end', report.latencyUs.endToEnd));
  sections.push(table(['latency', 'p50', 'p90', 'p99', 'p99.9', 'max', 'samples'], latencyRows));
  const broker = report.cpu.broker;
  const cpuRows = [
    [
      'broker',
      broker.cores === null ? '-' : broker.cores.toFixed(2),
      broker.eventLoopUtilization === null ? '-' : broker.eventLoopUtilization.toFixed(2),
    ],
    cpuRow('producers', report.cpu.producers),
  ];
  if (report.cpu.consumers.length > 0) cpuRows.push(cpuRow('consumers', report.cpu.consumers));
  sections.push(table(['cpu', 'cores', 'event loop busy'], cpuRows));
  if (report.missing > 0)
    sections.push(`MISSING: ${integer(report.missing)} produced message(s) were never consumed`);
  return sections.join('\n\n');
}
