// The append path (docs/storage.md, "Append path"): small appends written in line into the page
// cache, the guard that sends a log to thread-pool writes after a slow in-line write and back after
// its cool-down, failures of the in-line write, and several thread-pool writes in flight (published
// in order, taken back together after a failure).
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/protocol/error-codes.js';
import { encodeRecordBatch, iterateRecords, splitBatches } from '../../src/protocol/record-batch.js';
import { type AppendTicket, PartitionLog, type PartitionLogConfig } from '../../src/storage/partition-log.js';
import { segmentFileName } from '../../src/storage/segment.js';
import { useTempDir } from '../harness/temp-dir.js';
import { until } from '../harness/until.js';
import { type Faults, faultyFs } from './helpers/faulty-fs.js';

let dir: string;
const scratch = useTempDir('ms-append-path-');
beforeEach(() => {
  dir = scratch.path;
});

const limits = { maxDecompressedBytes: 1 << 24 };

function batchOf(value: string): Buffer {
  return encodeRecordBatch([{ key: 'k', value, timestamp: 1_700_000_000_000 }]);
}

async function values(log: PartitionLog): Promise<string[]> {
  const out: string[] = [];
  let offset = log.logStartOffset;
  while (offset < log.highWatermark) {
    const result = await log.read(offset, 1 << 20);
    for (const batch of splitBatches(result.data))
      for (const record of iterateRecords(batch, limits)) out.push(record.value!.toString());
    offset = result.nextOffset;
  }
  return out;
}

async function open(
  config: Partial<PartitionLogConfig>,
  clock?: { now(): number },
): Promise<{ log: PartitionLog; faults: Faults }> {
  const { fs, faults } = faultyFs();
  const log = await PartitionLog.open({
    dir,
    config: { segmentBytes: 1 << 20, indexIntervalBytes: 128, ...config },
    fs,
    ...(clock === undefined ? {} : { clock }),
  });
  return { log, faults };
}

const segmentBytes = async (): Promise<number> => (await stat(join(dir, segmentFileName(0n, 'log')))).size;

/** Settles (true) or not yet (false) after the event loop has turned a few times. */
async function settledSoon(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  return settled;
}

describe('in-line writes', () => {
  for (const durability of ['always', 'interval', 'never'] as const) {
    it(`writes a small append in line and publishes it (${durability})`, async () => {
      const { log, faults } = await open({ durability });
      const tickets = ['a', 'b', 'c'].map((value) => log.append(batchOf(value)));
      await Promise.all(tickets.map((ticket) => ticket.done));
      expect(faults.inlineWrites).toBe(1);
      expect(faults.writes).toBe(0);
      expect(log.inlineWrites).toBe(1);
      expect(log.writeMode).toBe('inline');
      expect(await values(log)).toEqual(['a', 'b', 'c']);
      // Larger than the threshold: a thread-pool write.
      const big = 'x'.repeat(4096);
      await log.append(encodeRecordBatch([{ value: big }])).done;
      expect(faults.writes).toBe(0);
      await log.close();
      const { log: small, faults: smallFaults } = await open({ durability, inlineWriteMaxBytes: 1024 });
      await small.append(encodeRecordBatch([{ value: big }])).done;
      expect(smallFaults.writes).toBe(1);
      expect(smallFaults.inlineWrites).toBe(0);
      expect((await values(small)).slice(-1)).toEqual([big]);
      await small.close();
    });
  }

  it('publishes a lone append on an idle log before the next event-loop turn', async () => {
    const { log } = await open({ durability: 'interval' });
    const order: string[] = [];
    log.onVisible(() => order.push('visible'));
    const ticket = log.append(batchOf('alone'));
    setImmediate(() => order.push('next turn'));
    await ticket.done;
    await new Promise((resolve) => setImmediate(resolve));
    expect(order).toEqual(['visible', 'next turn']);
    await log.close();
  });

  it('coalesces the appends of one synchronous run into one write, and yields to the event loop once per turn', async () => {
    const { log, faults } = await open({ durability: 'never' });
    // A loop that awaits each acknowledgement: they settle within microtasks, but timers still run.
    let timerRan = false;
    setImmediate(() => (timerRan = true));
    for (let i = 0; i < 50 && !timerRan; i++) await log.append(batchOf(`v${i}`)).done;
    expect(timerRan).toBe(true);
    const before = faults.inlineWrites;
    await Promise.all(Array.from({ length: 20 }, (_, i) => log.append(batchOf(`s${i}`)).done));
    expect(faults.inlineWrites - before).toBe(1);
    await log.close();
  });

  it('costs at most one extra write per turn: appends from separate callbacks of one turn share the second', async () => {
    const { log, faults } = await open({ durability: 'interval' });
    await log.append(batchOf('warm')).done;
    await new Promise((resolve) => setImmediate(resolve));
    const before = faults.inlineWrites;
    // Ten callbacks of one event-loop turn (as the 'data' events of ten connections are), each appending.
    const done = await new Promise<Promise<unknown>[]>((resolve) => {
      const tickets: Promise<unknown>[] = [];
      for (let i = 0; i < 10; i++)
        setImmediate(() => {
          tickets.push(log.append(batchOf(`c${i}`)).done);
          if (tickets.length === 10) resolve(tickets);
        });
    });
    await Promise.all(done);
    expect(faults.inlineWrites - before).toBe(2);
    await log.close();
  });

  it('switches to thread-pool writes after slow in-line writes in a row, and back after the cool-down', async () => {
    let now = 1_000_000;
    const { log, faults } = await open(
      { durability: 'interval', inlineWriteSlowMs: 20, inlineWriteCooldownMs: 5000 },
      { now: () => now },
    );
    await log.append(batchOf('fast')).done;
    expect(log.inlineWriteFallbacks).toBe(0);
    faults.inlineWriteDelayMs = 25;
    // One slow write alone (a descheduled thread, as often as not) does not switch.
    await log.append(batchOf('slow')).done;
    expect(log.inlineWriteFallbacks).toBe(0);
    faults.inlineWriteDelayMs = 0;
    await log.append(batchOf('fast again')).done;
    faults.inlineWriteDelayMs = 25;
    await log.append(batchOf('slow 1')).done;
    expect(log.writeMode).toBe('inline');
    await log.append(batchOf('slow 2')).done;
    expect(log.inlineWriteFallbacks).toBe(1);
    expect(log.writeMode).toBe('pool');
    faults.inlineWriteDelayMs = 0;
    const inline = faults.inlineWrites;
    await log.append(batchOf('pool 1')).done;
    now += 4999;
    await log.append(batchOf('pool 2')).done;
    expect(faults.inlineWrites).toBe(inline);
    expect(faults.writes).toBe(2);
    now += 1;
    expect(log.writeMode).toBe('inline');
    await log.append(batchOf('in line again')).done;
    expect(faults.inlineWrites).toBe(inline + 1);
    expect(log.inlineWrites).toBe(6);
    expect(log.inlineWriteFallbacks).toBe(1);
    expect(await values(log)).toEqual([
      'fast',
      'slow',
      'fast again',
      'slow 1',
      'slow 2',
      'pool 1',
      'pool 2',
      'in line again',
    ]);
    await log.close();
  });

  for (const durability of ['always', 'interval'] as const) {
    for (const [code, typed] of [
      ['ENOSPC', ErrorCode.STORAGE_FULL],
      ['EIO', ErrorCode.STORAGE_IO],
    ] as const) {
      it(`never exposes or acknowledges a failed in-line write (${code}, ${durability})`, async () => {
        const { log, faults } = await open({ durability });
        await log.append(batchOf('before')).done;
        const size = await segmentBytes();
        const seen: string[] = [];
        log.onVisible((batches) => {
          for (const batch of batches)
            for (const r of iterateRecords(batch, limits)) seen.push(r.value!.toString());
        });
        faults.writeError = code;
        const failing = [log.append(batchOf('x')), log.append(batchOf('y'))];
        for (const ticket of failing) await expect(ticket.done).rejects.toMatchObject({ code: typed });
        expect(faults.inlineWrites).toBe(2);
        expect(seen).toEqual([]);
        expect(log.highWatermark).toBe(1n);
        expect(log.logEndOffset).toBe(1n);
        // The part of the write that landed was cut back.
        expect(await segmentBytes()).toBe(size);
        faults.writeError = null;
        const after = log.append(batchOf('after'));
        expect(after.baseOffset).toBe(1n);
        await after.done;
        expect(seen).toEqual(['after']);
        expect(await values(log)).toEqual(['before', 'after']);
        await log.close();
      });
    }
  }
});

describe('visibility listeners', () => {
  for (const [durability, inlineWriteMaxBytes] of [
    ['interval', undefined],
    ['interval', 0],
    ['never', undefined],
    ['always', undefined],
  ] as const) {
    const how = `${durability}, ${inlineWriteMaxBytes === 0 ? 'thread-pool' : 'in-line'} writes`;
    it(`a listener that throws takes nothing back and stops no one (${how})`, async () => {
      const config = inlineWriteMaxBytes === undefined ? { durability } : { durability, inlineWriteMaxBytes };
      const { log } = await open(config);
      const seen: string[] = [];
      log.onVisible((batches) => {
        for (const batch of batches)
          for (const r of iterateRecords(batch, limits))
            if (r.value!.toString() === 'b') throw new Error('listener');
      });
      log.onVisible((batches) => {
        for (const batch of batches)
          for (const r of iterateRecords(batch, limits)) seen.push(r.value!.toString());
      });
      // Each append in its own turn, so that b is published alone when its listener throws.
      for (const value of ['a', 'b', 'c']) await log.append(batchOf(value)).done;
      expect(seen).toEqual(['a', 'b', 'c']);
      expect(log.highWatermark).toBe(3n);
      expect(await values(log)).toEqual(['a', 'b', 'c']);
      await log.close();
      // The file holds all three whole: a reopen recovers them (no hole, no torn tail).
      const { log: reopened } = await open(config);
      expect(reopened.logEndOffset).toBe(3n);
      expect(await values(reopened)).toEqual(['a', 'b', 'c']);
      await reopened.close();
    });
  }
});

describe('thread-pool writes in flight', () => {
  /** Appends `value` in its own event-loop turn, and waits until its write is held. */
  async function appendHeld(log: PartitionLog, faults: Faults, value: string): Promise<AppendTicket> {
    const held = faults.held.length;
    const ticket = log.append(batchOf(value));
    ticket.done.catch(() => undefined);
    await until(() => faults.held.length === held + 1, { what: `the write of ${value} held` });
    return ticket;
  }

  it('publishes in order when a later write ends first', async () => {
    const { log, faults } = await open({ durability: 'interval', inlineWriteMaxBytes: 0 });
    await log.append(batchOf('first')).done;
    faults.holdWrites = true;
    const seen: string[] = [];
    log.onVisible((batches) => {
      for (const batch of batches)
        for (const r of iterateRecords(batch, limits)) seen.push(r.value!.toString());
    });
    const a = await appendHeld(log, faults, 'a');
    const b = await appendHeld(log, faults, 'b');
    const c = await appendHeld(log, faults, 'c');
    faults.held[2]!.release();
    faults.held[1]!.release();
    await until(async () => (await stat(join(dir, segmentFileName(0n, 'log')))).size > 0);
    expect(await settledSoon(b.done)).toBe(false);
    expect(await settledSoon(c.done)).toBe(false);
    expect(seen).toEqual([]);
    expect(log.highWatermark).toBe(1n);
    faults.held[0]!.release();
    expect(await Promise.all([a.done, b.done, c.done])).toEqual(['written', 'written', 'written']);
    expect(seen).toEqual(['a', 'b', 'c']);
    expect(await values(log)).toEqual(['first', 'a', 'b', 'c']);
    await log.close();
  });

  it('keeps at most maxWritesInFlight writes in flight', async () => {
    const { log, faults } = await open({ durability: 'never', inlineWriteMaxBytes: 0, maxWritesInFlight: 2 });
    faults.holdWrites = true;
    const a = await appendHeld(log, faults, 'a');
    const b = await appendHeld(log, faults, 'b');
    const c = log.append(batchOf('c'));
    const d = log.append(batchOf('d'));
    expect(await settledSoon(c.done)).toBe(false);
    expect(faults.held.length).toBe(2);
    faults.held[0]!.release();
    await until(() => faults.held.length === 3, { what: 'the third write issued' });
    faults.held[1]!.release();
    faults.held[2]!.release();
    await Promise.all([a.done, b.done, c.done, d.done]);
    expect(await values(log)).toEqual(['a', 'b', 'c', 'd']);
    await log.close();
  });

  it('takes back every write after a failed one before anything of them is seen', async () => {
    const { log, faults } = await open({ durability: 'interval', inlineWriteMaxBytes: 0 });
    await log.append(batchOf('kept')).done;
    const size = await segmentBytes();
    faults.holdWrites = true;
    const seen: string[] = [];
    log.onVisible((batches) => {
      for (const batch of batches)
        for (const r of iterateRecords(batch, limits)) seen.push(r.value!.toString());
    });
    // Four writes in flight (the most), a fifth append queued behind them.
    const a = await appendHeld(log, faults, 'a');
    const b = await appendHeld(log, faults, 'b');
    const c = await appendHeld(log, faults, 'c');
    const d = await appendHeld(log, faults, 'd');
    const queued = log.append(batchOf('queued'));
    expect(await settledSoon(queued.done)).toBe(false);
    expect(faults.held.length).toBe(4);
    // The later writes land; the first fails (its first bytes landed too).
    for (const held of faults.held.slice(1)) held.release();
    await until(async () => (await segmentBytes()) > size);
    faults.held[0]!.release('ENOSPC');
    const errors = await Promise.all(
      [a, b, c, d, queued].map((t) =>
        t.done.then(
          () => null,
          (e: unknown) => e,
        ),
      ),
    );
    for (const error of errors) expect(error).toMatchObject({ code: ErrorCode.STORAGE_FULL });
    expect(new Set(errors).size).toBe(1);
    expect(seen).toEqual([]);
    expect(log.highWatermark).toBe(1n);
    expect(log.logEndOffset).toBe(1n);
    expect(await segmentBytes()).toBe(size);
    faults.holdWrites = false;
    const after = log.append(batchOf('after'));
    expect(after.baseOffset).toBe(1n);
    await after.done;
    expect(await values(log)).toEqual(['kept', 'after']);
    await log.close();
    const reopened = await PartitionLog.open({ dir, config: { segmentBytes: 1 << 20 } });
    expect(reopened.recovery.truncatedBytes).toBe(0);
    expect(await values(reopened)).toEqual(['kept', 'after']);
    await reopened.close();
  });

  it('publishes the writes before a failed one and takes back the rest', async () => {
    const { log, faults } = await open({ durability: 'never', inlineWriteMaxBytes: 0 });
    faults.holdWrites = true;
    const a = await appendHeld(log, faults, 'a');
    const b = await appendHeld(log, faults, 'b');
    const c = await appendHeld(log, faults, 'c');
    faults.held[1]!.release('EIO');
    faults.held[2]!.release();
    expect(await settledSoon(b.done)).toBe(false);
    faults.held[0]!.release();
    expect(await a.done).toBe('written');
    await expect(b.done).rejects.toMatchObject({ code: ErrorCode.STORAGE_IO });
    await expect(c.done).rejects.toMatchObject({ code: ErrorCode.STORAGE_IO });
    expect(log.logEndOffset).toBe(1n);
    faults.holdWrites = false;
    await log.append(batchOf('d')).done;
    expect(await values(log)).toEqual(['a', 'd']);
    await log.close();
  });
});
