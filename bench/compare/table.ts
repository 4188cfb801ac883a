// Turns the measurements of one comparison run into rows (one per system, then the bare limits)
// with the ratios: MemoryStreamer ÷ each peer, MemoryStreamer ÷ the bare limits, and every
// system's end-to-end P99 ÷ the ping-pong P99.
import type { Row } from '../lib/report.js';
import { MESSAGE_BYTES } from './workload.js';

export interface Percentiles {
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

export interface SystemOutcome {
  kind: 'system';
  /** 1-minute load average when this system's run began (other work on the machine skews figures). */
  load: number;
  key: string;
  name: string;
  version: string;
  ackMeans: string;
  produceMsgPerSec: number;
  replayMsgPerSec: number;
  serverCores: number | null;
  latencyMessages: number;
  endToEnd: Percentiles;
  ack: Percentiles;
}

export interface LimitsOutcome {
  kind: 'limits';
  load: number;
  echoMsgPerSec: number;
  pingPong: Percentiles;
  pingPongCount: number;
  /** The systems' fixed-rate schedule through the bare echo, and through the echo that writes first. */
  echoFixedRate: Percentiles;
  writingEchoFixedRate: Percentiles;
  fsync: Percentiles;
  fsyncCount: number;
}

export interface Unavailable {
  kind: 'unavailable';
  key: string;
  name: string;
  reason: string;
}

export type Outcome = SystemOutcome | LimitsOutcome | Unavailable;

const ratio = (ours: number | undefined, theirs: number | undefined): number | null =>
  ours === undefined || theirs === undefined || theirs === 0 ? null : Number((ours / theirs).toFixed(2));
const mbps = (msgPerSec: number) => Number(((msgPerSec * MESSAGE_BYTES) / 1e6).toFixed(1));

const EMPTY: Row = {
  version: null,
  'produce msg/s': null,
  'produce MB/s': null,
  'replay msg/s': null,
  'server CPU (cores)': null,
  'e2e p50 µs': null,
  'e2e p99 µs': null,
  'e2e p99.9 µs': null,
  'ack p50 µs': null,
  'ack p99 µs': null,
  'ack p99.9 µs': null,
  'MS÷ produce': null,
  'MS÷ replay': null,
  'MS÷ e2e p99': null,
  'MS÷ ack p99': null,
  'e2e p99 ÷ ping p99': null,
  'load 1m': null,
};

export function buildRows(outcomes: Outcome[]): Row[] {
  const ms = outcomes.find((o): o is SystemOutcome => o.kind === 'system' && o.key === 'memorystreamer');
  const limits = outcomes.find((o): o is LimitsOutcome => o.kind === 'limits');
  const rows: Row[] = [];
  for (const outcome of outcomes) {
    if (outcome.kind === 'unavailable') {
      rows.push({ system: outcome.name, ...EMPTY, status: `not available: ${outcome.reason}` });
    } else if (outcome.kind === 'system') {
      const isMs = outcome === ms;
      rows.push({
        system: outcome.name,
        ...EMPTY,
        version: outcome.version,
        'produce msg/s': outcome.produceMsgPerSec,
        'produce MB/s': mbps(outcome.produceMsgPerSec),
        'replay msg/s': outcome.replayMsgPerSec,
        'server CPU (cores)': outcome.serverCores,
        'e2e p50 µs': outcome.endToEnd.p50,
        'e2e p99 µs': outcome.endToEnd.p99,
        'e2e p99.9 µs': outcome.endToEnd.p999,
        'ack p50 µs': outcome.ack.p50,
        'ack p99 µs': outcome.ack.p99,
        'ack p99.9 µs': outcome.ack.p999,
        'MS÷ produce': isMs ? null : ratio(ms?.produceMsgPerSec, outcome.produceMsgPerSec),
        'MS÷ replay': isMs ? null : ratio(ms?.replayMsgPerSec, outcome.replayMsgPerSec),
        'MS÷ e2e p99': isMs ? null : ratio(ms?.endToEnd.p99, outcome.endToEnd.p99),
        'MS÷ ack p99': isMs ? null : ratio(ms?.ack.p99, outcome.ack.p99),
        'e2e p99 ÷ ping p99': ratio(outcome.endToEnd.p99, limits?.pingPong.p99),
        'load 1m': outcome.load,
        status: `ok; ${outcome.ackMeans}`,
      });
    } else {
      rows.push({
        system: 'bare: Node TCP echo, 100 B msgs in 100 KB writes',
        ...EMPTY,
        'produce msg/s': outcome.echoMsgPerSec,
        'produce MB/s': mbps(outcome.echoMsgPerSec),
        'MS÷ produce': ratio(ms?.produceMsgPerSec, outcome.echoMsgPerSec),
        'MS÷ replay': ratio(ms?.replayMsgPerSec, outcome.echoMsgPerSec),
        'load 1m': outcome.load,
        status: 'ok; no broker, nothing stored',
      });
      rows.push({
        system: 'bare: ping-pong round trip, 100 B, 1 in flight',
        ...EMPTY,
        'e2e p50 µs': outcome.pingPong.p50,
        'e2e p99 µs': outcome.pingPong.p99,
        'e2e p99.9 µs': outcome.pingPong.p999,
        'MS÷ e2e p99': ratio(ms?.endToEnd.p99, outcome.pingPong.p99),
        'e2e p99 ÷ ping p99': 1,
        'load 1m': outcome.load,
        status: `ok; ${outcome.pingPongCount} round trips`,
      });
      for (const [system, figures, what] of [
        ['bare: Node TCP echo at the fixed rate', outcome.echoFixedRate, 'the latency schedule, echoed'],
        [
          'bare: Node TCP echo that writes before echoing, at the fixed rate',
          outcome.writingEchoFixedRate,
          'the latency schedule, appended to a file, echoed once written',
        ],
      ] as const) {
        rows.push({
          system,
          ...EMPTY,
          'e2e p50 µs': figures.p50,
          'e2e p99 µs': figures.p99,
          'e2e p99.9 µs': figures.p999,
          'MS÷ e2e p99': ratio(ms?.endToEnd.p99, figures.p99),
          'e2e p99 ÷ ping p99': ratio(figures.p99, outcome.pingPong.p99),
          'load 1m': outcome.load,
          status: `ok; ${what}`,
        });
      }
      rows.push({
        system: 'bare: write + fdatasync 4 KiB',
        ...EMPTY,
        'ack p50 µs': outcome.fsync.p50,
        'ack p99 µs': outcome.fsync.p99,
        'ack p99.9 µs': outcome.fsync.p999,
        'MS÷ ack p99': ratio(ms?.ack.p99, outcome.fsync.p99),
        'load 1m': outcome.load,
        status: `ok; ${outcome.fsyncCount} syncs, one at a time`,
      });
    }
  }
  return rows;
}

/** The columns of each printed table (the JSON rows keep all of them). */
export const THROUGHPUT_COLUMNS = [
  'system',
  'produce msg/s',
  'produce MB/s',
  'replay msg/s',
  'server CPU (cores)',
  'MS÷ produce',
  'MS÷ replay',
  'load 1m',
  'version',
  'status',
];
export const LATENCY_COLUMNS = [
  'system',
  'e2e p50 µs',
  'e2e p99 µs',
  'e2e p99.9 µs',
  'ack p50 µs',
  'ack p99 µs',
  'ack p99.9 µs',
  'MS÷ e2e p99',
  'MS÷ ack p99',
  'e2e p99 ÷ ping p99',
];

export function pick(rows: Row[], columns: string[]): Row[] {
  return rows.map((row) => Object.fromEntries(columns.map((c) => [c, row[c] ?? null])));
}
