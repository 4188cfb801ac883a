// What the glibc thresholds a broker fixes while it trims (src/broker/startup-memory-trim.ts,
// docs/native-memory.md) do to the batch path, against glibc's own defaults, in alternating child
// processes (one per case and round, so each starts from a fresh heap):
//  - encode: 100-byte messages sealed into batches of 2,000 by RecordBatchBuilder, each batch's
//    buffer handed off as the producer hands it to the transport (about 232 KiB each);
//  - embedded produce-and-consume: a broker in the process (`memoryTrim` on, which fixes the
//    thresholds, or `memoryTrim: false`, which leaves glibc's), a memory topic past its 64 MiB
//    retention, sendMany of 2,000 with 4 calls in flight read by `batches()` + `forEachValue`.
// Each reports ns per message (wall time), CPU ns per message and minor page faults per message,
// over the runs after a warm-up run; RSS at the end.
// Run: npx tsx bench/malloc-thresholds.ts [--messages 2000000] [--rounds 3] [--json]
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MALLOC_MMAP_THRESHOLD, MALLOC_TRIM_THRESHOLD } from '../src/broker/startup-memory-trim.js';
import { nativeMemory, setMallocThresholds } from '../src/common/native-memory.js';
import { Broker } from '../src/embedded/broker.js';
import { RecordBatchBuilder } from '../src/protocol/record-batch.js';
import { argNumber, printResult, progress, type Row, writeResult } from './lib/report.js';

const messages = argNumber('messages', 2_000_000);
const rounds = argNumber('rounds', 3);
const value = Buffer.alloc(100, 0x63);

interface Measured {
  nsPerMessage: number;
  cpuNsPerMessage: number;
  faultsPerMessage: number;
  rssMiB: number;
}

/** Runs `work` once to warm up, then `runs` times; the median of each figure over those. */
async function measure(work: () => Promise<void> | void, runs = 3): Promise<Measured> {
  await work();
  const samples: Array<Omit<Measured, 'rssMiB'>> = [];
  for (let i = 0; i < runs; i++) {
    const faults = process.resourceUsage().minorPageFault;
    const cpu = process.cpuUsage();
    const started = performance.now();
    await work();
    const ns = (performance.now() - started) * 1e6;
    const used = process.cpuUsage(cpu);
    samples.push({
      nsPerMessage: ns / messages,
      cpuNsPerMessage: ((used.user + used.system) * 1000) / messages,
      faultsPerMessage: (process.resourceUsage().minorPageFault - faults) / messages,
    });
  }
  const median = (pick: (s: (typeof samples)[number]) => number) =>
    samples.map(pick).sort((a, b) => a - b)[Math.floor(samples.length / 2)]!;
  return {
    nsPerMessage: median((s) => s.nsPerMessage),
    cpuNsPerMessage: median((s) => s.cpuNsPerMessage),
    faultsPerMessage: median((s) => s.faultsPerMessage),
    rssMiB: process.memoryUsage().rss / 2 ** 20,
  };
}

function encode(): void {
  const builder = new RecordBatchBuilder(2000 * 116 + 128);
  const record = { value, timestamp: Date.now() };
  for (let i = 0; i < messages; i++) {
    builder.append(record);
    if (builder.count === 2000) builder.finish();
  }
}

async function produceAndConsume(fixed: boolean): Promise<Measured> {
  const dataDir = await mkdtemp(join(tmpdir(), 'ms-malloc-'));
  const broker = await Broker.start({ dataDir, ...(fixed ? {} : { memoryTrim: false }) });
  const client = broker.connect();
  const topic = 'steady';
  await client.admin.createTopic({
    name: topic,
    partitions: 1,
    storage: 'memory',
    config: { retentionBytes: 64 * 1024 * 1024, segmentBytes: 8 * 1024 * 1024 },
  });
  const producer = client.producer();
  const inputs = Array.from({ length: 2000 }, () => ({ topic, partition: 0, value }));
  const run = async () => {
    const consumer = client.consumer({ topics: [topic], from: 'latest' });
    await consumer.start();
    let count = 0;
    let bytes = 0;
    const visit = (_buffer: Buffer, start: number, end: number) => {
      bytes += end - start;
    };
    const consumed = (async () => {
      for await (const batch of consumer.batches()) {
        batch.forEachValue(visit);
        count += batch.count;
        if (count >= messages) break;
      }
    })();
    const window: Promise<unknown>[] = [];
    for (let sent = 0; sent < messages; sent += 2000) {
      window.push(producer.sendMany(inputs));
      if (window.length >= 4) await window.shift();
    }
    await Promise.all(window);
    await consumed;
    await consumer.close();
    if (bytes !== messages * value.length) throw new Error(`read ${bytes} bytes`);
  };
  // Past the retention before anything counts.
  for (let filled = 0; filled * 168 < 80 * 1024 * 1024; filled += messages) await run();
  const measured = await measure(run);
  await producer.close();
  await client.close();
  await broker.stop();
  await rm(dataDir, { recursive: true, force: true });
  return measured;
}

const childAt = process.argv.indexOf('--child');
if (childAt >= 0) {
  const [part, mode] = process.argv[childAt + 1]!.split(':') as ['encode' | 'pc', 'glibc' | 'fixed'];
  let measured: Measured;
  if (part === 'encode') {
    if (mode === 'fixed')
      setMallocThresholds({ mmapThreshold: MALLOC_MMAP_THRESHOLD, trimThreshold: MALLOC_TRIM_THRESHOLD });
    measured = await measure(encode);
  } else {
    measured = await produceAndConsume(mode === 'fixed');
  }
  process.stdout.write(`${JSON.stringify(measured)}\n`);
  process.exit(0);
}

if (!nativeMemory.available) {
  process.stderr.write(
    `the native memory addon is not loaded (${nativeMemory.reason}): nothing to compare\n`,
  );
  process.exit(1);
}

const self = fileURLToPath(import.meta.url);
const results = new Map<string, Measured[]>();
for (let round = 0; round < rounds; round++) {
  progress(`round ${round + 1} of ${rounds}`);
  const modes = round % 2 === 0 ? ['glibc', 'fixed'] : ['fixed', 'glibc'];
  for (const part of ['encode', 'pc'])
    for (const mode of modes) {
      const output = execFileSync(
        process.execPath,
        ['--import', 'tsx', self, '--messages', String(messages), '--child', `${part}:${mode}`],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
      );
      const measured = JSON.parse(output.trim().split('\n').pop()!) as Measured;
      const name = `${part === 'encode' ? 'encode, 2,000-message batches handed off' : 'embedded produce-and-consume, memory topic past its retention'}, ${mode === 'fixed' ? 'thresholds fixed' : 'glibc defaults'}`;
      progress(
        `  ${name}: ${measured.nsPerMessage.toFixed(0)} ns/msg, ${measured.faultsPerMessage.toFixed(4)} faults/msg`,
      );
      results.set(name, [...(results.get(name) ?? []), measured]);
    }
}

const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const rows: Row[] = [...results.entries()].map(([name, list]) => ({
  case: name,
  'ns/msg (median)': Number(median(list.map((m) => m.nsPerMessage)).toFixed(1)),
  'ns/msg (each round)': list.map((m) => m.nsPerMessage.toFixed(0)).join(' / '),
  'CPU ns/msg (median)': Number(median(list.map((m) => m.cpuNsPerMessage)).toFixed(1)),
  'page faults/msg (median)': Number(median(list.map((m) => m.faultsPerMessage)).toFixed(4)),
  'RSS MiB at the end (median)': Number(median(list.map((m) => m.rssMiB)).toFixed(0)),
}));
printResult(
  writeResult({
    benchmark: 'malloc-thresholds',
    title:
      "glibc's mmap and trim thresholds as a trimming broker fixes them, against glibc's defaults (alternating child processes)",
    command: 'npx tsx bench/malloc-thresholds.ts',
    settings: {
      messages,
      rounds,
      valueBytes: value.length,
      mmapThreshold: MALLOC_MMAP_THRESHOLD,
      trimThreshold: MALLOC_TRIM_THRESHOLD,
      glibc: nativeMemory.glibcVersion,
    },
    rows,
    notes: [
      'each figure is the median of three timed runs after a warm-up run, in a fresh child process per case and round',
      'a first touch of a 4 KiB page costs about 10 µs on the benchmark machine (bench/page-faults.ts)',
    ],
  }),
);
