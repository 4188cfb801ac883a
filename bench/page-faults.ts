// What memory fresh from the operating system costs on this machine, and the JavaScript patterns
// that keep asking for it. Two parts:
//  - first touch: buffers of 256 KiB (as V8 maps its heap pages) allocated with allocUnsafeSlow and
//    touched one byte per 4 KiB page, against touching the same buffers again; time per page and
//    the process's minor page faults per page (`process.resourceUsage()`);
//  - one request in flight at a time, its entry kept in a long-lived container (one the old
//    generation holds, as a connection's table of requests is): a Map (set and delete by id), a
//    Set (add and delete), and the CorrelationTable the transports use instead
//    (src/common/correlation-table.ts); ns per request, page faults per request, and the
//    mark-compactions (full collections of the old generation) per million requests.
// Run: npx tsx bench/page-faults.ts [--mib 64] [--requests 1000000] [--rounds 3] [--json]
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { CorrelationTable } from '../src/common/correlation-table.js';
import { argNumber, printResult, progress, type Row, writeResult } from './lib/report.js';

const mib = argNumber('mib', 64);
const requests = argNumber('requests', 1_000_000);
const rounds = argNumber('rounds', 3);
const PAGE = 4096;
const REGION = 256 * 1024;

const faults = (): number => process.resourceUsage().minorPageFault;

/** Touches one byte of every page of `buffers`; µs per page and faults per page. */
function touch(buffers: Buffer[]): { usPerPage: number; faultsPerPage: number } {
  const pages = buffers.length * (REGION / PAGE);
  const before = faults();
  const started = performance.now();
  for (const buffer of buffers) for (let at = 0; at < buffer.length; at += PAGE) buffer[at] = 1;
  const us = (performance.now() - started) * 1000;
  return { usPerPage: us / pages, faultsPerPage: (faults() - before) / pages };
}

/** Mark-compactions so far (counted as the collector reports them, after the loop's turn). */
let markCompacts = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    const detail = (entry as unknown as { detail?: { kind?: number } }).detail;
    if (detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) markCompacts++;
  }
}).observe({ entryTypes: ['gc'] });

type Container = 'Map' | 'Set' | 'CorrelationTable';

/** The same request loop through each container: add the request, then remove it. */
function requestLoop(kind: Container, count: number, start: number): void {
  if (kind === 'Map') {
    const map = containers.map;
    for (let id = start; id < start + count; id++) {
      map.set(id, { id });
      map.delete(id);
    }
  } else if (kind === 'Set') {
    const set = containers.set;
    for (let id = start; id < start + count; id++) {
      const entry = { id };
      set.add(entry);
      set.delete(entry);
    }
  } else {
    const table = containers.table;
    for (let id = start; id < start + count; id++) {
      table.set(id, { id });
      table.delete(id);
    }
  }
}

const containers = {
  map: new Map<number, { id: number }>(),
  set: new Set<{ id: number }>(),
  table: new CorrelationTable<{ id: number }>(),
};

/** Young garbage enough for a few scavenges: the containers move to the old generation, as time would move a connection's. */
function age(): void {
  let sink: unknown[] = [];
  for (let i = 0; i < 3_000_000; i++) sink = [i, sink.length];
  if (sink.length !== 2) throw new Error('unreachable');
}

/** Requests per synchronous stretch: the collector's reports arrive between stretches. */
const STRETCH = 10_000;

async function measureContainer(kind: Container, start: number) {
  const before = faults();
  const compactsBefore = markCompacts;
  let busyMs = 0;
  for (let done = 0; done < requests; done += STRETCH) {
    const started = performance.now();
    requestLoop(kind, Math.min(STRETCH, requests - done), start + done);
    busyMs += performance.now() - started;
    await new Promise((resolve) => setImmediate(resolve));
  }
  const faulted = faults() - before;
  await new Promise((resolve) => setTimeout(resolve, 10));
  return {
    nsPerRequest: (busyMs * 1e6) / requests,
    faultsPerRequest: faulted / requests,
    markCompactsPerMillion: ((markCompacts - compactsBefore) * 1e6) / requests,
  };
}

const touchRows: Row[] = [];
const firstTouch: number[] = [];
const again: number[] = [];
const faultsFirst: number[] = [];
for (let round = 0; round < rounds; round++) {
  progress(`first touch: round ${round + 1}/${rounds}, ${mib} MiB in 256-KiB buffers`);
  const buffers = Array.from({ length: (mib * 1024 * 1024) / REGION }, () => Buffer.allocUnsafeSlow(REGION));
  const fresh = touch(buffers);
  const warm = touch(buffers);
  firstTouch.push(fresh.usPerPage);
  faultsFirst.push(fresh.faultsPerPage);
  again.push(warm.usPerPage);
}
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
touchRows.push(
  {
    case: 'first touch of fresh memory',
    'µs per 4 KiB page (median)': Number(median(firstTouch).toFixed(2)),
    rounds: firstTouch.map((v) => v.toFixed(2)).join(' / '),
    'page faults per page': Number(median(faultsFirst).toFixed(2)),
  },
  {
    case: 'the same pages touched again',
    'µs per 4 KiB page (median)': Number(median(again).toFixed(3)),
    rounds: again.map((v) => v.toFixed(3)).join(' / '),
    'page faults per page': 0,
  },
);

age();
const containerRows: Row[] = [];
const results = new Map<Container, Awaited<ReturnType<typeof measureContainer>>[]>();
let start = 0;
for (let round = 0; round < rounds; round++) {
  // Rotate the order so that no container always runs first.
  const kinds: Container[] = ['Map', 'Set', 'CorrelationTable'];
  for (let i = 0; i < round % 3; i++) kinds.push(kinds.shift()!);
  for (const kind of kinds) {
    progress(`one request in flight: round ${round + 1}/${rounds}, ${kind}, ${requests} requests`);
    requestLoop(kind, 10_000, start); // warm-up
    start += 10_000;
    const measured = await measureContainer(kind, start);
    start += requests;
    results.set(kind, [...(results.get(kind) ?? []), measured]);
  }
}
for (const [kind, list] of results) {
  containerRows.push({
    container: kind,
    'ns per request (median)': Math.round(median(list.map((m) => m.nsPerRequest))),
    'page faults per request': Number(median(list.map((m) => m.faultsPerRequest)).toFixed(4)),
    'mark-compactions per million requests': Math.round(median(list.map((m) => m.markCompactsPerMillion))),
  });
}

const command = `npx tsx bench/page-faults.ts --mib ${mib} --requests ${requests} --rounds ${rounds}`;
printResult(
  writeResult({
    benchmark: 'page-faults',
    title: 'Fresh memory: the cost of a page fault on this machine',
    command,
    settings: { mib, rounds, bufferBytes: REGION, pageBytes: PAGE },
    rows: touchRows,
    notes: [
      'buffers from Buffer.allocUnsafeSlow (256 KiB each, mapped by the allocator, untouched); one byte written per 4 KiB page; the second pass writes the same pages again',
      'a page fault is the kernel mapping a page on first touch; in a virtual machine the hypervisor may also have to back the page, which is what makes it cost microseconds',
    ],
  }),
);
printResult(
  writeResult({
    benchmark: 'page-faults-containers',
    title: 'One request in flight at a time, kept in a long-lived container: what each request costs',
    command,
    settings: { requests, rounds, inFlight: 1 },
    rows: containerRows,
    notes: [
      'each request: an entry object added under a rising id and removed again, in a container aged into the old generation first (a connection’s table of requests lives as long as the connection)',
      'the loop runs in stretches of 10,000 requests with an event-loop turn between them (the collector reports its mark-compactions there); ns per request counts the stretches only',
      'a Map or Set that goes between empty and one entry makes a new hash table each time; for a table in the old generation the new table is old-generation garbage, whose pages are mapped afresh (page faults) and cleared by mark-compactions',
    ],
  }),
);
