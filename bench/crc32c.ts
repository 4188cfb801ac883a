// CRC-32C throughput of our native addon (native/crc32c, used by src/protocol/crc32c.ts) side by side
// with @node-rs/crc32 (the fallback), one call per input of 1 KiB .. 1 MiB, in alternating rounds
// inside one run; medians per size. Needs the addon built (node scripts/build-native.mjs).
// Run: npx tsx bench/crc32c.ts [--rounds N] [--mb M] [--json]
import { randomBytes } from 'node:crypto';
import { crc32c as nodeRsCrc32c } from '@node-rs/crc32';
import { crc32cBackend, crc32c as ours } from '../src/protocol/crc32c.js';
import { argNumber, printResult, progress, writeResult } from './lib/report.js';

const ROUNDS = argNumber('rounds', 9);
/** MiB checksummed per measurement (one size, one backend, one round). */
const MIB_PER_MEASUREMENT = argNumber('mb', 512);
const SIZES = [1024, 16 * 1024, 64 * 1024, 1024 * 1024];

if (crc32cBackend !== 'native') {
  console.log(`bench/crc32c.ts: the native addon is not in use (backend ${crc32cBackend}); build it first`);
  console.log(
    'with `node scripts/build-native.mjs` (and leave MEMORYSTREAMER_NATIVE_CRC unset). Nothing measured.',
  );
  process.exit(process.env.BENCH_SMOKE === '1' ? 0 : 1);
}

type Crc = (data: Uint8Array) => number;

/** GB/s (10^9 bytes per second) of `crc` over `input`, called enough times to cover the budget. */
function measure(crc: Crc, input: Uint8Array): number {
  const calls = Math.max(1, Math.round((MIB_PER_MEASUREMENT * 2 ** 20) / input.length));
  let sink = 0;
  const started = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) sink ^= crc(input);
  const ns = Number(process.hrtime.bigint() - started);
  if (sink === 0x1234567) console.log(''); // keeps the calls observable
  return (calls * input.length) / ns;
}

const inputs = SIZES.map((size) => randomBytes(size));
for (const input of inputs) {
  if (ours(input) !== nodeRsCrc32c(input)) throw new Error(`backends disagree at ${input.length} bytes`);
}
const oursCrc: Crc = (data) => ours(data);
const nodeRsCrc: Crc = (data) => nodeRsCrc32c(data);
// Warm-up: both paths compiled before the first measured round.
for (const input of inputs) {
  measure(oursCrc, input.subarray(0, Math.min(input.length, 4096)));
  measure(nodeRsCrc, input.subarray(0, Math.min(input.length, 4096)));
}

const samples = SIZES.map(() => ({ native: [] as number[], nodeRs: [] as number[], ratio: [] as number[] }));
for (let round = 0; round < ROUNDS; round++) {
  progress(`round ${round + 1}/${ROUNDS}`);
  SIZES.forEach((_, i) => {
    // Alternate which backend goes first, so neither always meets a warmer or colder machine.
    let native: number;
    let nodeRs: number;
    if (round % 2 === 0) {
      native = measure(oursCrc, inputs[i]!);
      nodeRs = measure(nodeRsCrc, inputs[i]!);
    } else {
      nodeRs = measure(nodeRsCrc, inputs[i]!);
      native = measure(oursCrc, inputs[i]!);
    }
    samples[i]!.native.push(native);
    samples[i]!.nodeRs.push(nodeRs);
    samples[i]!.ratio.push(native / nodeRs);
  });
}

const median = (values: number[]) => [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)]!;
const label = (size: number) => (size >= 2 ** 20 ? `${size / 2 ** 20} MiB` : `${size / 1024} KiB`);
const result = writeResult({
  benchmark: 'crc32c',
  title: 'CRC-32C throughput per call size: native addon vs @node-rs/crc32 (one core, medians)',
  command: 'npx tsx bench/crc32c.ts',
  settings: {
    rounds: ROUNDS,
    mibPerMeasurement: MIB_PER_MEASUREMENT,
    input: 'random bytes, one Buffer per size',
  },
  rows: SIZES.map((size, i) => ({
    'input size': label(size),
    'native GB/s': Number(median(samples[i]!.native).toFixed(2)),
    '@node-rs/crc32 GB/s': Number(median(samples[i]!.nodeRs).toFixed(2)),
    'ratio native/@node-rs': Number(median(samples[i]!.ratio).toFixed(2)),
  })),
  notes: [
    'GB/s = 10^9 bytes per second; each figure is the median over the rounds, the ratio is the median of the per-round ratios',
    'native: SSE4.2 crc32 in three interleaved chains (docs/native-crc32c.md); the one-call cost (~0.1 µs) dominates at 1 KiB',
  ],
});
printResult(result);
