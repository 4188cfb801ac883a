// kill -9 during appends with durability `always`: after recovery every acknowledged batch is
// present, byte-identical, at the offset it was acknowledged with; offsets are dense; nothing
// appears twice. RELIABILITY.md, battery item "crash".
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { iterateRecords, splitBatches } from '../../src/protocol/record-batch.js';
import { PartitionLog } from '../../src/storage/partition-log.js';
import { tempDir } from '../harness/temp-dir.js';

const ROUNDS = process.env.CI === 'true' ? 12 : 4;

async function runUntilKilled(dir: string, killAfterMs: number): Promise<Map<bigint, string>> {
  const acked = new Map<bigint, string>();
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/storage/helpers/crash-writer.ts', dir], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let buffered = '';
  let ready = false;
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) {
      if (line.startsWith('ready')) ready = true;
      const match = /^ack (\d+) (.*)$/.exec(line);
      if (match) acked.set(BigInt(match[1]!), match[2]!);
    }
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  while (!ready) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, killAfterMs));
  child.kill('SIGKILL');
  await exited;
  return acked;
}

describe('crash safety', () => {
  it(`keeps every acknowledged batch across ${ROUNDS} kill -9 rounds`, async () => {
    const dir = await tempDir('ms-crash-');
    const allAcked = new Map<bigint, string>();
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const acked = await runUntilKilled(dir, 50 + Math.floor(Math.random() * 400));
        for (const [offset, value] of acked) allAcked.set(offset, value);
        const log = await PartitionLog.open({
          dir,
          config: { segmentBytes: 64 * 1024, indexIntervalBytes: 512 },
        });
        const found = new Map<bigint, string>();
        let expected = log.logStartOffset;
        let offset = log.logStartOffset;
        while (offset < log.highWatermark) {
          const { data, nextOffset } = await log.read(offset, 1 << 20);
          for (const batch of splitBatches(data)) {
            for (const record of iterateRecords(batch, { maxDecompressedBytes: 1 << 20 })) {
              expect(record.offset).toBe(expected);
              expected++;
              if (record.offsetDelta === 0) {
                expect(found.has(record.offset)).toBe(false);
                found.set(record.offset, record.value!.toString());
              }
            }
          }
          offset = nextOffset;
        }
        for (const [ackedOffset, value] of allAcked) expect(found.get(ackedOffset)).toBe(value);
        expect(new Set(found.values()).size).toBe(found.size);
        await log.close();
      }
      expect(allAcked.size).toBeGreaterThan(ROUNDS);
    } finally {
    }
  });
});
