// The battery's checks on made-up histories and copies: each passes a consistent run and names
// the violation in a run that lost, moved, changed or rewound something.

import { describe, expect, it } from 'vitest';
import {
  checkAcknowledged,
  checkConsumed,
  checkGroupOffsets,
  checkIdentical,
  checkStreams,
  type PartitionCopies,
} from '../../scripts/chaos/checks.js';
import type { HistoryEvent, TimedEvent } from '../../scripts/chaos/history.js';
import type { ReplicaLog } from '../../scripts/chaos/replica-logs.js';

/** A copy holding one single-record batch per value, from offset 0 (bytes: the value itself). */
function copy(
  broker: number,
  values: ReadonlyArray<string | [key: string, value: string]>,
  highWatermark: bigint | null = null,
): ReplicaLog {
  const records = values.map((entry, i) => ({
    offset: BigInt(i),
    key: typeof entry === 'string' ? null : entry[0],
    value: typeof entry === 'string' ? entry : entry[1],
  }));
  return {
    broker,
    highWatermark: highWatermark ?? BigInt(values.length),
    logEndOffset: BigInt(values.length),
    batches: records.map((record) => ({
      baseOffset: record.offset,
      lastOffset: record.offset,
      bytes: Buffer.from(`${record.key ?? ''}:${record.value}`),
    })),
    records,
  };
}

function partition(topic: string, copies: ReplicaLog[], isr = copies.map((c) => c.broker)): PartitionCopies {
  return {
    topic,
    partition: 0,
    leader: copies[0]!.broker,
    isr,
    copies: new Map(copies.map((c) => [c.broker, c])),
  };
}

let t = 0;
const at = (event: HistoryEvent): TimedEvent => ({ t: t++, ...event });
const ack = (offset: number, value: string) =>
  at({ type: 'ack', partition: 0, offset: String(offset), value });

describe('acknowledged', () => {
  it('passes when every in-sync replica has each acknowledged value once at its offset', () => {
    const copies = [partition('log', [copy(1, ['a', 'b', 'c']), copy(2, ['a', 'b', 'c'])])];
    expect(checkAcknowledged([ack(0, 'a'), ack(2, 'c')], copies, 'log').violations).toEqual([]);
  });

  it('names an acknowledged value missing from an in-sync replica, or at another offset', () => {
    const copies = [partition('log', [copy(1, ['a', 'b', 'c']), copy(2, ['a', 'c'])])];
    const { violations } = checkAcknowledged([ack(2, 'c')], copies, 'log');
    expect(violations).toEqual([
      expect.stringMatching(/log\/0@2: acknowledged c .*broker 2 has nothing there/),
    ]);
  });

  it('names an acknowledged value that is there twice', () => {
    const copies = [partition('log', [copy(1, ['a', 'b', 'a'])])];
    expect(checkAcknowledged([ack(0, 'a')], copies, 'log').violations).toEqual([
      expect.stringMatching(/a is 2 times on broker 1/),
    ]);
  });

  it('does not hold a replica outside the ISR to it', () => {
    const copies = [partition('log', [copy(1, ['a', 'b']), copy(2, ['a'])], [1])];
    expect(checkAcknowledged([ack(1, 'b')], copies, 'log').violations).toEqual([]);
  });
});

describe('identical', () => {
  it('compares in-sync copies up to the leader high watermark, others up to their own', () => {
    const leader = copy(1, ['a', 'b', 'c'], 2n);
    // Broker 3 is outside the ISR and its tail differs above its own high watermark (1).
    const same = [partition('log', [leader, copy(2, ['a', 'b']), copy(3, ['a', 'x'], 1n)], [1, 2])];
    expect(checkIdentical(same).violations).toEqual([]);
    const differs = [partition('log', [leader, copy(2, ['a', 'x', 'c'])])];
    expect(checkIdentical(differs).violations).toEqual([
      expect.stringMatching(/broker 2 differs from leader 1 below 2 \(first at offset 1\)/),
    ]);
    const short = [partition('log', [leader, copy(2, ['a'])])];
    expect(checkIdentical(short).violations).toEqual([
      expect.stringMatching(/ends at 1, below the high watermark 2/),
    ]);
  });
});

describe('consumed', () => {
  it('names a message a consumer saw that the final log does not have at its offset', () => {
    const copies = [partition('log', [copy(1, ['a', 'b'])])];
    const seen = (offset: number, value: string) =>
      at({ type: 'consume', partition: 0, offset: String(offset), value });
    expect(checkConsumed([seen(0, 'a'), seen(1, 'b')], copies, 'log').violations).toEqual([]);
    expect(checkConsumed([seen(1, 'z')], copies, 'log').violations).toEqual([
      expect.stringMatching(/log\/0@1: a consumer saw z .*the final log has b/),
    ]);
  });
});

describe('streams', () => {
  const streamAck = (key: string, version: number, offset: number, value: string) =>
    at({ type: 'stream-ack', key, partition: 0, offset: String(offset), version, value });

  it('passes gap-free streams holding every acknowledged version', () => {
    const copies = [
      partition('s', [
        copy(1, [
          ['k', 'k-v0-a0'],
          ['j', 'j-v0-a0'],
          ['k', 'k-v1-a2'],
        ]),
      ]),
    ];
    expect(checkStreams([streamAck('k', 1, 2, 'k-v1-a2')], copies, 's').violations).toEqual([]);
  });

  it('names a gap, a version appended twice, and a lost acknowledged append', () => {
    const gap = [
      partition('s', [
        copy(1, [
          ['k', 'k-v0-a0'],
          ['k', 'k-v2-a1'],
        ]),
      ]),
    ];
    expect(checkStreams([], gap, 's').violations).toEqual([
      expect.stringMatching(/stream k: sequence 1 holds k-v2-a1/),
    ]);
    const twice = [
      partition('s', [
        copy(1, [
          ['k', 'k-v0-a0'],
          ['k', 'k-v0-a1'],
        ]),
      ]),
    ];
    expect(checkStreams([], twice, 's').violations).toHaveLength(1);
    const lost = [partition('s', [copy(1, [['k', 'k-v0-a0']])])];
    expect(checkStreams([streamAck('k', 1, 1, 'k-v1-a1')], lost, 's').violations).toEqual([
      expect.stringMatching(/version 1 acknowledged as k-v1-a1 .*has nothing there/),
    ]);
  });
});

describe('group offsets', () => {
  const committed = (askedAt: number, offsets: Record<string, string>) =>
    at({ type: 'committed', askedAt, offsets });
  const commit = (offsets: Record<string, string>) => at({ type: 'commit', offsets });

  it('passes offsets that only move forward and keep every acknowledged commit', () => {
    t = 0;
    const events = [
      commit({ 0: '5' }),
      committed(1, { 0: '5' }),
      commit({ 0: '9' }),
      committed(3, { 0: '9' }),
    ];
    expect(checkGroupOffsets(events).violations).toEqual([]);
  });

  it('names an offset that went back, and an acknowledged commit read lower afterwards', () => {
    t = 0;
    const back = [committed(0, { 0: '9' }), committed(1, { 0: '5' })];
    expect(checkGroupOffsets(back).violations).toEqual([
      expect.stringMatching(/partition 0 went back from 9 .* to 5/),
    ]);
    t = 0;
    const lost = [commit({ 1: '7' }), committed(1, { 1: '3' })];
    expect(checkGroupOffsets(lost).violations).toEqual([
      expect.stringMatching(/partition 1 read as 3 .* after a commit of 7 was acknowledged/),
    ]);
  });

  it('takes the last acknowledged commit, also when the consumer committed lower', () => {
    t = 0;
    const events = [commit({ 0: '9' }), commit({ 0: '4' }), committed(2, { 0: '4' })];
    expect(checkGroupOffsets(events).violations).toEqual([]);
  });

  it('does not count a commit acknowledged after the offsets were asked for', () => {
    t = 0;
    const events = [committed(-1, { 0: '1' }), commit({ 0: '5' })];
    // The read was asked for before the commit (askedAt -1 < the commit's t 1).
    expect(checkGroupOffsets(events).violations).toEqual([]);
  });
});
