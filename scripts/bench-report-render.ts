// Renders docs/benchmarks.md and docs/charts/*.svg from bench/results/*.json; shared by
// scripts/bench-report.ts (which writes the files) and test/docs/bench-report.test.ts (which checks
// the committed files equal the output). renderBenchReport is pure: same results in, same bytes out.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchResult, Row } from '../bench/lib/report.js';
import {
  type BarGroup,
  formatCount,
  formatMicros,
  horizontalBarChart,
  type LinePanel,
  lineChart,
} from './bench-charts.js';

export interface RenderedFile {
  /** Path relative to the repository root, e.g. docs/charts/compare-throughput.svg. */
  path: string;
  content: string;
}

const ORDER = [
  'end-to-end-throughput',
  'end-to-end-latency',
  'storage-throughput',
  'storage-replay',
  'storage-always',
  'record-batch',
  'frame-decode',
];

const PALETTE = ['#0969da', '#d4720c', '#1a7f37', '#8250df', '#bf3989', '#57606a'];

/** Reads every bench/results/*.json under root (file order does not matter: the render sorts). */
export function loadResults(root: string): BenchResult[] {
  const dir = join(root, 'bench', 'results');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as BenchResult);
}

function sortResults(results: BenchResult[]): BenchResult[] {
  return [...results].sort((a, b) => {
    const ia = ORDER.indexOf(a.benchmark);
    const ib = ORDER.indexOf(b.benchmark);
    return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.benchmark.localeCompare(b.benchmark);
  });
}

function table(rows: Row[]): string[] {
  const headers = Object.keys(rows[0] ?? {});
  const format = (v: unknown) =>
    typeof v === 'number' ? v.toLocaleString('en-US') : v === null || v === undefined ? '–' : String(v);
  return [
    `| ${headers.join(' | ')} |`,
    `|${headers.map((_header, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
    ...rows.map((row) => `| ${headers.map((h) => format(row[h])).join(' | ')} |`),
  ];
}

function num(row: Row | undefined, key: string): number | null {
  const v = row?.[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function str(row: Row, key: string): string {
  const v = row[key];
  return v === null || v === undefined ? '' : String(v);
}

// ---- compare.json ----------------------------------------------------------------------------

interface CompareRows {
  ours: Row | undefined;
  peers: Row[];
  echo: Row | undefined;
  ping: Row | undefined;
  /** The latency schedule through the bare echo and through the echo that writes first. */
  fixedRateEchoes: Row[];
  fsync: Row | undefined;
}

function compareRows(result: BenchResult): CompareRows {
  const isBare = (r: Row) => str(r, 'system').startsWith('bare');
  const bare = result.rows.filter(isBare);
  return {
    ours: result.rows.find((r) => /^memorystreamer/i.test(str(r, 'system'))),
    peers: result.rows.filter((r) => !isBare(r) && !/^memorystreamer/i.test(str(r, 'system'))),
    echo: bare.find((r) => /echo/i.test(str(r, 'system')) && !/fixed rate/i.test(str(r, 'system'))),
    fixedRateEchoes: bare.filter((r) => /echo.*fixed rate/i.test(str(r, 'system'))),
    ping: bare.find((r) => /ping/i.test(str(r, 'system'))),
    fsync: bare.find((r) => /fdatasync|fsync/i.test(str(r, 'system'))),
  };
}

/** "v2.9.10" from "v2.9.10"; "3.10.8-1.1+deb12u1" from "3.10.8-1.1+deb12u1 (client handshake shim, …)". */
function shortVersion(row: Row): string | undefined {
  const v = str(row, 'version').split(' ')[0];
  return v ? v : undefined;
}

function systemGroups(c: CompareRows): Row[] {
  return [...(c.ours ? [c.ours] : []), ...c.peers];
}

function throughputChart(result: BenchResult, c: CompareRows): string {
  const groups: BarGroup[] = systemGroups(c).map((row) => ({
    label: str(row, 'system'),
    sublabel: shortVersion(row),
    values: [num(row, 'produce msg/s'), num(row, 'replay msg/s')],
  }));
  const echo = num(c.echo, 'produce msg/s');
  return horizontalBarChart({
    title: 'Throughput per system (msg/s, higher is better)',
    subtitle: `${result.settings.messageBytes ?? '?'}-byte messages, one producer, one consumer, loopback; ${result.machine.cores} cores; ${result.date.slice(0, 10)}; ${result.command}`,
    axisLabel: 'messages per second',
    scale: 'linear',
    series: [
      { name: 'produce (acknowledged)', color: '#0969da' },
      { name: 'replay (read back from start)', color: '#d4720c' },
    ],
    groups,
    references: echo === null ? [] : [{ label: 'bare TCP echo limit (no broker)', value: echo }],
    format: formatCount,
  });
}

function latencyChart(result: BenchResult, c: CompareRows): string {
  const keys = ['e2e p50 µs', 'e2e p99 µs', 'e2e p99.9 µs'];
  const groups: BarGroup[] = [];
  if (c.ping) {
    groups.push({
      label: 'ping-pong round trip',
      sublabel: 'bare limit, no broker',
      values: keys.map((k) => num(c.ping, k)),
      reference: true,
    });
  }
  for (const row of systemGroups(c)) {
    groups.push({
      label: str(row, 'system'),
      sublabel: shortVersion(row),
      values: keys.map((k) => num(row, k)),
    });
  }
  const pingP99 = num(c.ping, 'e2e p99 µs');
  return horizontalBarChart({
    title: 'End-to-end latency per system (send → consumer receipt, lower is better, log scale)',
    subtitle: `${result.settings.latencyRate ?? '?'} msg/s fixed rate, from each message's intended send time; ${result.machine.cores} cores; ${result.date.slice(0, 10)}; ${result.command}`,
    axisLabel: 'latency (log scale)',
    scale: 'log',
    series: [
      { name: 'P50', color: '#9ecae1' },
      { name: 'P99', color: '#3182bd' },
      { name: 'P99.9', color: '#08306b' },
    ],
    groups,
    references: pingP99 === null ? [] : [{ label: 'ping-pong P99', value: pingP99 }],
    format: formatMicros,
  });
}

function ratio(ours: number | null, theirs: number | null): string {
  if (ours === null || theirs === null || theirs === 0) return '–';
  const r = ours / theirs;
  return `${r >= 10 ? Number(r.toPrecision(3)).toLocaleString('en-US') : r.toFixed(2)}×`;
}

function fmt(v: number | null): string {
  return v === null ? '–' : v.toLocaleString('en-US');
}

function load(row: Row | undefined): string {
  const v = num(row, 'load 1m');
  return v === null ? '–' : String(v);
}

/** The load each row began at, against the core count and MemoryStreamer's own row. */
function loadSentence(result: BenchResult, ours: Row): string {
  const cores = result.machine.cores;
  const ourLoad = num(ours, 'load 1m');
  const loads = result.rows.map((r) => num(r, 'load 1m')).filter((v): v is number => v !== null);
  if (ourLoad === null || loads.length === 0) return 'No load average was recorded with these rows.';
  const parts = [
    `Load 1m is the machine's 1-minute load average as each row began (${cores} cores): from ${Math.min(...loads)} to ${Math.max(...loads)}, MemoryStreamer's row at ${ourLoad}.`,
  ];
  if (Math.min(...loads) > cores) parts.push('Every row began with the load above the core count.');
  const busier = result.rows.filter((r) => (num(r, 'load 1m') ?? ourLoad) - ourLoad >= 1);
  if (busier.length > 0) {
    parts.push(
      `${busier.map((r) => `${str(r, 'system')} (${load(r)})`).join(' and ')} began at a load at least 1 above MemoryStreamer's, which can depress ${busier.length === 1 ? 'its' : 'their'} figures and inflate the ratios to ${busier.length === 1 ? 'it' : 'them'}.`,
    );
  }
  return parts.join(' ');
}

function summary(result: BenchResult): string[] {
  const c = compareRows(result);
  if (!c.ours) return [];
  const ours = c.ours;
  const lines = [
    '## Summary',
    '',
    `MemoryStreamer ${str(ours, 'version')} against its peers and the bare limits, computed from`,
    `\`bench/results/${result.benchmark}.json\` (\`${result.command}\`, ${result.date.slice(0, 16).replace('T', ' ')} UTC; see`,
    `[the comparison section](#${anchor(result.title)})). Each cell is MemoryStreamer's figure ÷ the other's:`,
    'for throughput above 1× means MemoryStreamer is faster, for latency below 1× means it is lower.',
    'Against the echo limit both produce and replay are ÷ the echo msg/s. MemoryStreamer measured',
    `${fmt(num(ours, 'produce msg/s'))} msg/s produce, ${fmt(num(ours, 'replay msg/s'))} msg/s replay, e2e P99 ${fmt(num(ours, 'e2e p99 µs'))} µs, ack P99 ${fmt(num(ours, 'ack p99 µs'))} µs.`,
    '',
    '| compared with | produce msg/s | replay msg/s | e2e P99 | ack P99 | load 1m |',
    '|---|---:|---:|---:|---:|---:|',
  ];
  const ourProduce = num(ours, 'produce msg/s');
  const ourReplay = num(ours, 'replay msg/s');
  const ourE2e = num(ours, 'e2e p99 µs');
  const ourAck = num(ours, 'ack p99 µs');
  for (const peer of c.peers) {
    const version = shortVersion(peer);
    lines.push(
      `| ${str(peer, 'system')}${version ? ` ${version}` : ''} | ${ratio(ourProduce, num(peer, 'produce msg/s'))} | ${ratio(ourReplay, num(peer, 'replay msg/s'))} | ${ratio(ourE2e, num(peer, 'e2e p99 µs'))} | ${ratio(ourAck, num(peer, 'ack p99 µs'))} | ${load(peer)} |`,
    );
  }
  for (const limit of [c.echo, c.ping, ...c.fixedRateEchoes, c.fsync]) {
    if (!limit) continue;
    const echoRate = num(limit, 'produce msg/s');
    lines.push(
      `| *${str(limit, 'system')}* | ${ratio(ourProduce, echoRate)} | ${ratio(ourReplay, num(limit, 'replay msg/s') ?? echoRate)} | ${ratio(ourE2e, num(limit, 'e2e p99 µs'))} | ${ratio(ourAck, num(limit, 'ack p99 µs'))} | ${load(limit)} |`,
    );
  }
  lines.push('', loadSentence(result, ours), '');
  return lines;
}

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens. */
function anchor(title: string): string {
  return title
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

// ---- scaling-*.json ------------------------------------------------------------------------

const PRODUCE = /^produce msg\/s/i;
const E2E_P99 = /^e2e p99 (µs|us)$/i;
const NOT_PARAMETER = /^(system|version|status|notes?|load 1m)$/i;

function asNumber(v: Row[string] | undefined): number | null {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return null;
}

/**
 * One line chart per scaling dimension: x = the parameter column (the first column that is not a
 * metric, the system, the version or the status), panels = produce msg/s and e2e P99 when present,
 * one line per system when the rows carry a system column. Returns undefined when there is nothing to draw.
 */
export function scalingChart(result: BenchResult): string | undefined {
  const headers = Object.keys(result.rows[0] ?? {});
  const produceKey = headers.find((h) => PRODUCE.test(h));
  const p99Key = headers.find((h) => E2E_P99.test(h));
  const parameter = headers.find((h) => h !== produceKey && h !== p99Key && !NOT_PARAMETER.test(h));
  if (!parameter || (!produceKey && !p99Key)) return undefined;
  const rows = result.rows.filter((r) => r[parameter] !== null && r[parameter] !== undefined);
  if (rows.length === 0) return undefined;
  const numeric = rows.every((r) => asNumber(r[parameter]) !== null);
  const categories = [...new Set(rows.map((r) => String(r[parameter])))];
  const xOf = (r: Row): number =>
    numeric ? asNumber(r[parameter])! : categories.indexOf(String(r[parameter]));
  const xs = [...new Set(rows.map(xOf))].sort((a, b) => a - b);
  const positive = xs.every((x) => x > 0);
  const xScale = !numeric
    ? 'category'
    : positive && xs.length > 2 && xs.at(-1)! / xs[0]! >= 16
      ? 'log'
      : 'linear';
  const bySystem = new Map<string, Row[]>();
  for (const row of rows) {
    const name = headers.includes('system') ? str(row, 'system') : 'MemoryStreamer';
    bySystem.set(name, [...(bySystem.get(name) ?? []), row]);
  }
  const panel = (
    key: string,
    title: string,
    axisLabel: string,
    format: (v: number) => string,
  ): LinePanel => ({
    title,
    axisLabel,
    format,
    lines: [...bySystem].map(([name, systemRows], i) => ({
      name,
      color: PALETTE[i % PALETTE.length]!,
      points: systemRows
        .map((r) => ({ x: xOf(r), y: num(r, key) }))
        .filter((p): p is { x: number; y: number } => p.y !== null)
        .sort((a, b) => a.x - b.x),
    })),
  });
  const panels: LinePanel[] = [];
  if (produceKey)
    panels.push(panel(produceKey, 'Produce throughput (higher is better)', produceKey, formatCount));
  if (p99Key) panels.push(panel(p99Key, 'End-to-end P99 latency (lower is better)', 'e2e P99', formatMicros));
  if (panels.every((p) => p.lines.every((l) => l.points.length === 0))) return undefined;
  return lineChart({
    title: result.title,
    subtitle: `${result.command}; ${result.machine.cores} cores; ${result.date.slice(0, 10)}`,
    xLabel: parameter,
    xScale,
    xTicks: xs.map((x) => ({
      x,
      label: numeric ? (Math.abs(x) >= 1e4 ? formatCount(x) : x.toLocaleString('en-US')) : categories[x]!,
    })),
    panels,
  });
}

// ---- the page ----------------------------------------------------------------------------

export function renderBenchReport(input: BenchResult[]): RenderedFile[] {
  const results = sortResults(input);
  const charts: RenderedFile[] = [];
  const compare = results.find((r) => r.benchmark === 'compare');
  const lines = [
    '# Benchmarks',
    '',
    'Generated by `npx tsx scripts/bench-report.ts` from `bench/results/*.json`; each section names the',
    'command that produced it, when, on which machine, and with which settings. Nothing here is',
    "hand-edited. Targets come from the project's issues; where one is not reached the table says so.",
    'The charts in `docs/charts/` are drawn by the same script from the same files.',
    '',
    "Conditions for all runs below: the 2-vCPU development VM, loopback TCP, data on the VM's virtual",
    'disk (ext4 via virtio); one run each (no averaging across runs), so expect run-to-run variation',
    'of ±20% on throughput figures and more on tail latencies.',
    '',
    ...(compare ? summary(compare) : []),
  ];
  for (const result of results) {
    lines.push(`## ${result.title}`, '');
    lines.push(`- command: \`${result.command}\``);
    lines.push(`- date: ${result.date.slice(0, 16).replace('T', ' ')} UTC`);
    const m = result.machine;
    lines.push(
      `- machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Linux ${m.kernel}, Node ${m.node}, disk ${m.disk}`,
    );
    lines.push(
      `- settings: ${Object.entries(result.settings)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ')}`,
    );
    lines.push('', ...table(result.rows), '');
    if (result.benchmark === 'compare') {
      const c = compareRows(result);
      charts.push({ path: 'docs/charts/compare-throughput.svg', content: throughputChart(result, c) });
      charts.push({ path: 'docs/charts/compare-latency.svg', content: latencyChart(result, c) });
      lines.push(
        '![Produce and replay msg/s per system, with the bare TCP echo limit](charts/compare-throughput.svg)',
        '',
        '![End-to-end P50, P99 and P99.9 latency per system on a log scale, with the ping-pong round trip](charts/compare-latency.svg)',
        '',
      );
    } else if (result.benchmark.startsWith('scaling-')) {
      const svg = scalingChart(result);
      if (svg) {
        charts.push({ path: `docs/charts/${result.benchmark}.svg`, content: svg });
        lines.push(`![${result.title}: produce msg/s and e2e P99](charts/${result.benchmark}.svg)`, '');
      }
    }
    for (const note of result.notes ?? []) lines.push(`> ${note}`, '>');
    if ((result.notes ?? []).length > 0) lines.pop();
    lines.push('');
  }
  return [{ path: 'docs/benchmarks.md', content: `${lines.join('\n').trimEnd()}\n` }, ...charts];
}
