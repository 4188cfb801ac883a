// Disk full on a real file system: a 2 MiB tmpfs is mounted (root only; skipped with a warning
// elsewhere, a failure in CI) and filled through the real write path, so ENOSPC comes from the
// kernel at whatever point it happens — mid-writev, while a segment rolls, while indexes are
// written — not from an injected fault. Every acknowledged batch must read back byte-identical,
// every rejection must be the typed STORAGE_FULL, and the log must accept writes again and
// reopen cleanly once space is freed (docs/storage.md, "Faults").
import { execFileSync } from 'node:child_process';
import { open, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Broker } from '../../src/embedded/broker.js';
import { isMemoryStreamerError, type Message } from '../../src/index.js';
import { encodeRecordBatch, iterateRecords, splitBatches } from '../../src/protocol/record-batch.js';
import { PartitionLog } from '../../src/storage/partition-log.js';
import { makeTempDir, removeTempDir, tempDir } from '../harness/temp-dir.js';

const TMPFS_BYTES = 2 * 1024 * 1024;
const FILLER_BYTES = 512 * 1024;
const limits = { maxDecompressedBytes: 1 << 24 };

interface Mount {
  dir: string;
  release(): Promise<void>;
}

function unmount(dir: string): void {
  try {
    execFileSync('umount', [dir], { stdio: 'pipe' });
  } catch {
    execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
  }
}

/** Whether this machine lets us mount a tmpfs (root, and not a container that forbids it). */
async function canMountTmpfs(): Promise<boolean> {
  const dir = await makeTempDir('ms-diskfull-probe-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: 'pipe' });
    unmount(dir);
    return true;
  } catch (error) {
    console.warn(`disk-full tests skipped: cannot mount a tmpfs (${(error as Error).message.trim()})`);
    return false;
  } finally {
    await removeTempDir(dir);
  }
}

// They run wherever a tmpfs can be mounted (root on these machines, CI included). Where the
// kernel refuses the mount (not root, or a container without CAP_SYS_ADMIN) they are skipped and
// say so loudly: there is no real file system to fill, and a simulated one is what
// partition-log.test.ts already covers with its ENOSPC shim.
const skip = !(await canMountTmpfs());

/** Mounts a tmpfs of `size` on a fresh temporary directory of the running test. */
async function mountTmpfs(size: string): Promise<Mount> {
  const dir = await tempDir('ms-diskfull-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (error) {
    throw new Error(`cannot mount a tmpfs: ${(error as Error).message}`);
  }
  return {
    dir,
    // The directory itself goes when the test has finished (tempDir), after this.
    async release() {
      unmount(dir);
    },
  };
}

function isStorageFull(error: unknown): boolean {
  return isMemoryStreamerError(error) && error.codeName === 'STORAGE_FULL';
}

function describeError(error: unknown): string {
  if (isMemoryStreamerError(error)) return `${error.codeName}: ${error.message}`;
  const errno = error as NodeJS.ErrnoException;
  return `untyped ${errno.code ?? ''} ${String(error)}`;
}

/** A batch of 1–4 records with keys, headers and values of varying size, unique per `n`. */
function batchNumber(n: number): Buffer {
  const records = Array.from({ length: 1 + (n % 4) }, (_, i) => ({
    key: `key-${n}-${i}`,
    value: Buffer.alloc(300 + ((n * 997 + i * 131) % 2500), (n + i) & 0xff),
    headers: [{ key: 'n', value: String(n) }],
    timestamp: 1_700_000_000_000 + n,
  }));
  return encodeRecordBatch(records, { baseTimestamp: 1_700_000_000_000 + n });
}

/** Every batch of the log, in order, as copies. */
async function readBatches(log: PartitionLog): Promise<Buffer[]> {
  const out: Buffer[] = [];
  let offset = log.logStartOffset;
  while (offset < log.highWatermark) {
    const { data, nextOffset } = await log.read(offset, 64 * 1024);
    for (const batch of splitBatches(data)) {
      out.push(Buffer.from(batch));
      // Decoding proves the records inside are whole, not just the batch CRC.
      for (const record of iterateRecords(batch, limits)) expect(record.key).not.toBeNull();
    }
    expect(nextOffset).toBeGreaterThan(offset);
    offset = nextOffset;
  }
  return out;
}

/**
 * Appends in concurrent groups until appends are refused. Returns the acknowledged batches in offset
 * order (as written, base offsets filled in) and the errors of the refused ones.
 */
async function fillUntilRefused(
  log: PartitionLog,
  first: number,
): Promise<{ acked: Buffer[]; errors: unknown[]; next: number }> {
  const acked: Buffer[] = [];
  const errors: unknown[] = [];
  let n = first;
  for (let round = 0; round < 10_000 && errors.length === 0; round++) {
    const group = Array.from({ length: 1 + (round % 5) }, () => batchNumber(n++));
    const tickets = group.map((batch) => ({ batch, ticket: log.append(batch) }));
    const settled = await Promise.allSettled(tickets.map((t) => t.ticket.done));
    settled.forEach((result, i) => {
      if (result.status === 'fulfilled') {
        expect(result.value).toBe('synced');
        acked.push(Buffer.from(tickets[i]!.batch));
      } else {
        errors.push(result.reason);
      }
    });
  }
  return { acked, errors, next: n };
}

/** Writes a file until the device refuses more: afterwards not one more page fits. */
async function takeAllSpace(path: string): Promise<void> {
  const handle = await open(path, 'w');
  const page = Buffer.alloc(4096, 0x66);
  try {
    for (let position = 0; ; position += page.length) await handle.write(page, 0, page.length, position);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    await handle.close();
  }
}

/** Asserts two lists of batches are byte-identical (Buffer.equals: toEqual is slow on megabytes). */
function expectSameBatches(actual: Buffer[], expected: Buffer[]): void {
  const firstDifference = expected.findIndex(
    (batch, i) => actual[i] === undefined || !batch.equals(actual[i]!),
  );
  expect({ count: actual.length, firstDifference }).toEqual({ count: expected.length, firstDifference: -1 });
}

describe.skipIf(skip)('disk full on a real tmpfs', () => {
  it('rejects with STORAGE_FULL, keeps every acknowledged batch, and recovers when space returns', async () => {
    const mount = await mountTmpfs('2m');
    const dir = join(mount.dir, 'partition');
    const config = { durability: 'always' as const, segmentBytes: 48 * 1024, indexIntervalBytes: 1024 };
    let log: PartitionLog | null = null;
    try {
      const filler = join(mount.dir, 'filler.bin');
      await writeFile(filler, Buffer.alloc(FILLER_BYTES, 0x66));
      log = await PartitionLog.open({ dir, config });

      const firstFill = await fillUntilRefused(log, 0);
      expect(firstFill.errors.length).toBeGreaterThan(0);
      expect(firstFill.errors.map(describeError)).toEqual(
        firstFill.errors.map(() => expect.stringMatching(/^STORAGE_FULL/)),
      );
      expect(firstFill.errors.every(isStorageFull)).toBe(true);
      expect(log.state).toBe('open');
      expect(log.segmentCount).toBeGreaterThan(3);
      // Most of the device went to acknowledged data (index files and page rounding take the rest):
      // the rejection came from a full disk, not from an early failure.
      const ackedBytes = firstFill.acked.reduce((sum, b) => sum + b.length, 0);
      expect(ackedBytes).toBeGreaterThan(TMPFS_BYTES - FILLER_BYTES - 512 * 1024);
      expect(log.logEndOffset).toBe(log.highWatermark);
      expectSameBatches(await readBatches(log), firstFill.acked);

      // Still full: a batch larger than any space left is refused again, still typed, and nothing
      // changes (a smaller one might still fit in the slack of a page).
      const large = encodeRecordBatch([{ key: 'large', value: Buffer.alloc(128 * 1024, 1), timestamp: 1 }]);
      const again = log.append(large);
      await expect(again.done.catch(describeError)).resolves.toMatch(/^STORAGE_FULL/);
      expectSameBatches(await readBatches(log), firstFill.acked);

      await rm(filler);
      const after: Buffer[] = [];
      for (let i = 0; i < 20; i++) {
        const batch = batchNumber(firstFill.next + 1 + i);
        await log.append(batch).done;
        after.push(Buffer.from(batch));
      }
      const expected = [...firstFill.acked, ...after];
      expectSameBatches(await readBatches(log), expected);

      // Full a second time, then close: recovery finds exactly the acknowledged batches.
      const secondFill = await fillUntilRefused(log, firstFill.next + 100);
      expect(secondFill.errors.every(isStorageFull)).toBe(true);
      expected.push(...secondFill.acked);
      await log.close();
      log = null;
      const reopened = await PartitionLog.open({ dir, config });
      log = reopened;
      expect(reopened.recovery.corruption).toBeNull();
      expect(reopened.recovery.truncatedBytes).toBe(0);
      expect(reopened.state).toBe('open');
      expectSameBatches(await readBatches(reopened), expected);
    } finally {
      await log?.close().catch(() => undefined);
      await mount.release();
    }
  });

  // ENOSPC while a segment rolls (the sealed segment's index files are written then) is the same
  // typed, retriable STORAGE_FULL as during a write, and the log stays valid and writable.
  it('rejects with STORAGE_FULL when the disk fills while a segment rolls', async () => {
    const mount = await mountTmpfs('1m');
    const dir = join(mount.dir, 'partition');
    const config = { durability: 'always' as const, segmentBytes: 16 * 1024 };
    const batch = (n: number) =>
      encodeRecordBatch([{ key: `k${n}`, value: Buffer.alloc(5000, n), timestamp: 1_700_000_000_000 + n }]);
    let log: PartitionLog | null = null;
    try {
      log = await PartitionLog.open({ dir, config });
      const acked: Buffer[] = [];
      for (let n = 0; n < 3; n++) {
        const b = batch(n);
        await log.append(b).done;
        acked.push(Buffer.from(b));
      }
      await takeAllSpace(join(mount.dir, 'filler.bin'));
      // 15 KB in the active segment: the next batch rolls it, and the sealed segment's index files
      // need a page each.
      const refused = await log.append(batch(3)).done.then(
        () => null,
        (error: unknown) => error,
      );
      expect(refused).not.toBeNull();
      expect(log.state).toBe('open');
      expectSameBatches(await readBatches(log), acked);
      await rm(join(mount.dir, 'filler.bin'));
      const b = batch(4);
      const ticket = log.append(b);
      expect(ticket.baseOffset).toBe(3n);
      await ticket.done;
      acked.push(Buffer.from(b));
      expectSameBatches(await readBatches(log), acked);
      expect((await readdir(dir)).filter((f) => f.endsWith('.log'))).toHaveLength(2);
      expect(describeError(refused)).toMatch(/^STORAGE_FULL/);
    } finally {
      await log?.close().catch(() => undefined);
      await mount.release();
    }
  });

  // Indexes are derivable: a full disk must not stop a restart that has to rebuild one. The
  // rebuilt index is used from memory and reported as unsaved.
  it('reopens a log on a full disk when a sealed segment index must be rebuilt', async () => {
    const mount = await mountTmpfs('1m');
    const dir = join(mount.dir, 'partition');
    const config = { durability: 'always' as const, segmentBytes: 16 * 1024 };
    let log: PartitionLog | null = null;
    try {
      log = await PartitionLog.open({ dir, config });
      const acked: Buffer[] = [];
      for (let n = 0; n < 5; n++) {
        const b = encodeRecordBatch([{ key: `k${n}`, value: Buffer.alloc(5000, n), timestamp: n }]);
        await log.append(b).done;
        acked.push(Buffer.from(b));
      }
      await log.close();
      log = null;
      await rm(join(dir, '00000000000000000000.index'));
      await takeAllSpace(join(mount.dir, 'filler.bin'));
      log = await PartitionLog.open({ dir, config });
      expect(log.recovery.rebuiltIndexes).toBe(1);
      expect(log.recovery.unsavedIndexes).toBe(1);
      expectSameBatches(await readBatches(log), acked);
    } finally {
      await log?.close().catch(() => undefined);
      await mount.release();
    }
  });

  it('through the broker: a full disk refuses produce with STORAGE_FULL and reads go on', async () => {
    const mount = await mountTmpfs('3m');
    let broker: Broker | null = null;
    try {
      broker = await Broker.start({ dataDir: join(mount.dir, 'data'), retentionCheckMs: 3_600_000 });
      const client = broker.connect();
      const config = { durability: 'always' as const, segmentBytes: 64 * 1024 };
      await client.admin.createTopic({ name: 'fills', partitions: 1, config });
      await client.admin.createTopic({ name: 'other', partitions: 1, config });
      // Retriable errors are not retried, so the first STORAGE_FULL reaches the caller.
      const producer = client.producer({ retries: 0, lingerMs: 0 });
      for (let i = 0; i < 5; i++) await producer.send({ topic: 'other', key: 'o', value: `other-${i}` });
      const filler = join(mount.dir, 'filler.bin');
      await writeFile(filler, Buffer.alloc(FILLER_BYTES, 0x66));

      const acked: string[] = [];
      let refusal: unknown = null;
      for (let i = 0; i < 2000 && refusal === null; i++) {
        const value = `${i}:${'v'.repeat(2000 + ((i * 389) % 3000))}`;
        try {
          await producer.send({ topic: 'fills', key: `k${i % 7}`, value, headers: { i: String(i) } });
          acked.push(value);
        } catch (error) {
          refusal = error;
        }
      }
      expect(describeError(refusal)).toMatch(/^STORAGE_FULL/);
      expect(isStorageFull(refusal)).toBe(true);
      expect(acked.length).toBeGreaterThan(100);

      // Disk still full: every acknowledged message is served, and so is the other topic.
      const read = async (topic: string, count: number): Promise<string[]> => {
        const consumer = client.consumer({ topics: [topic], from: 'earliest' });
        const out: string[] = [];
        try {
          for await (const message of consumer as AsyncIterable<Message>) {
            out.push(message.value!.toString());
            if (out.length === count) break;
          }
        } finally {
          await consumer.close();
        }
        return out;
      };
      expect(await read('fills', acked.length)).toEqual(acked);
      expect(await read('other', 5)).toEqual(['other-0', 'other-1', 'other-2', 'other-3', 'other-4']);
      const end = await client.admin.offsetOf('fills', 0, 'latest');
      expect(end).toBe(BigInt(acked.length));

      // Space returns: both topics take writes again, at the next offsets.
      await rm(filler);
      const next = await producer.send({ topic: 'fills', key: 'k0', value: 'after' });
      expect(next.offset).toBe(BigInt(acked.length));
      expect((await producer.send({ topic: 'other', key: 'o', value: 'other-5' })).offset).toBe(5n);
      expect(await read('fills', acked.length + 1)).toEqual([...acked, 'after']);
      await client.close();
    } finally {
      await broker?.stop().catch(() => undefined);
      await mount.release();
    }
  });
});
