// The producer-snapshot format fixture: what test/fixtures/producers/v1/ holds, and (run directly)
// the script that wrote it. Run ONCE per format version, into a new directory:
//   npx tsx scripts/producer-snapshot-fixture.ts [--out <dir>]
// test/broker/producers/producer-snapshot-fixture.test.ts reads the committed file with the current
// code and checks that the current encoder still writes the very same bytes.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  encodeSnapshot,
  type ProducerSnapshot,
  snapshotFileName,
} from '../src/broker/producers/producer-snapshot.js';

/** Two producers: one with the full five retained batches, one after an epoch bump with an id past 2^53. */
export const FIXTURE_SNAPSHOT: ProducerSnapshot = {
  offset: 42n,
  entries: [
    {
      producerId: 7n,
      epoch: 0,
      batches: [0, 1, 2, 3, 4].map((i) => ({
        baseSequence: i * 3,
        lastSequence: i * 3 + 2,
        baseOffset: BigInt(i * 5),
        lastOffset: BigInt(i * 5 + 2),
      })),
    },
    {
      producerId: 9_007_199_254_740_993n,
      epoch: 3,
      batches: [{ baseSequence: 0, lastSequence: 0, baseOffset: 41n, lastOffset: 41n }],
    },
  ],
};

export const FIXTURE_FILE = snapshotFileName(FIXTURE_SNAPSHOT.offset);

const isMain = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const outIndex = process.argv.indexOf('--out');
  const out =
    outIndex >= 0
      ? process.argv[outIndex + 1]!
      : join(dirname(fileURLToPath(import.meta.url)), '..', 'test', 'fixtures', 'producers', 'v1');
  await mkdir(out, { recursive: true });
  await writeFile(join(out, FIXTURE_FILE), encodeSnapshot(FIXTURE_SNAPSHOT));
  console.log(`wrote ${join(out, FIXTURE_FILE)}`);
}
