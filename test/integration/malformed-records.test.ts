// A producer that sends batches whose CRC is right but whose records are malformed (forged offset
// deltas, a null header key, lengths that do not add up, over-long varints...), raw over TCP,
// plain and inside every codec: the broker refuses each with BAD_RECORD_BATCH naming the record,
// appends nothing, and a consumer from earliest reads every good message and only those.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Broker, type Client, connect, ErrorCode, type Message, valueString } from '../../src/index.js';
import { BinaryWriter } from '../../src/protocol/codec/binary-writer.js';
import { decodeErrorPayload } from '../../src/protocol/commands/control.js';
import { produceCommand } from '../../src/protocol/commands/data-commands.js';
import type { CompressionCodecName } from '../../src/protocol/compression.js';
import { Opcode } from '../../src/protocol/opcodes.js';
import { encodeRecordBatch } from '../../src/protocol/record-batch.js';
import { RawClient } from '../broker/server/helpers/raw-client.js';
import { useTempDir } from '../harness/temp-dir.js';
import { goodRecords, type RawRecord, rawBatch } from '../protocol/helpers/raw-batch.js';

const scratch = useTempDir('ms-malformed-');
let dataDir: string;
let broker: Broker;
beforeEach(async () => {
  dataDir = scratch.path;
  broker = await Broker.start({ dataDir, port: 0 });
});
afterEach(async () => {
  await broker.stop();
});

const CODECS: readonly CompressionCodecName[] = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];

function forged(index: number, forge: (record: RawRecord) => RawRecord): RawRecord[] {
  const records: RawRecord[] = goodRecords(3).map((r) => ({
    ...r,
    key: 'acct',
    value: `bad-${String(r.offsetDelta)}`,
  }));
  records[index] = forge(records[index]!);
  return records;
}

const BAD: Array<[string, RawRecord[], RegExp]> = [
  ['duplicate offset deltas', forged(1, (r) => ({ ...r, offsetDelta: 0 })), /record 1: offsetDelta 0/],
  [
    'a null header key',
    forged(2, (r) => ({ ...r, headers: [{ key: null, value: 'v' }] })),
    /record 2: header 0 has a null key/,
  ],
  ['a record length that overruns', forged(2, (r) => ({ ...r, length: (n) => n + 9 })), /record 2: length/],
  ['a value length of -3', forged(0, (r) => ({ ...r, value: { length: -3 } })), /record 0: value length -3/],
  [
    'an over-long varint',
    forged(1, (r) => ({ ...r, offsetDelta: Buffer.from([0x82, 0x80, 0x80, 0x80, 0x80, 0x00]) })),
    /record 1: offsetDelta varint is longer than 5 bytes/,
  ],
  ['record attributes 0x40', forged(0, (r) => ({ ...r, attributes: 0x40 })), /record 0: attributes 0x40/],
];

function produceFrame(topic: string, batch: Buffer): Buffer {
  const writer = new BinaryWriter(batch.length + 64);
  produceCommand.encodeRequest(writer, { topic, partition: 0, acks: 1, batch });
  return writer.finish();
}

async function takeUntil(iterator: AsyncIterable<Message>, last: string): Promise<Message[]> {
  const out: Message[] = [];
  for await (const message of iterator) {
    out.push(message);
    if (valueString(message) === last) break;
  }
  return out;
}

describe('batches with malformed records under a correct CRC, sent raw over TCP', () => {
  it('are refused with BAD_RECORD_BATCH, append nothing, and consumers read every good message', async () => {
    const client: Client = await connect({ brokers: [`127.0.0.1:${broker.address!.port}`] });
    await client.admin.createTopic({ name: 'ledger', partitions: 1 });
    const producer = client.producer();
    const raw = await RawClient.open(broker.address!.port);
    await raw.handshake();

    const expected: string[] = [];
    let correlationId = 100;
    let good = 0;
    for (const codec of CODECS) {
      // A good batch, raw too, so the raw path itself is shown to work for this codec.
      const value = `good-raw-${codec}`;
      const ok = correlationId++;
      raw.send(
        Opcode.PRODUCE,
        produceFrame('ledger', encodeRecordBatch([{ key: 'acct', value }], { compression: codec })),
        ok,
      );
      const accepted = await raw.waitFor((f) => f.header.correlationId === ok);
      expect(accepted.header.errorCode).toBe(0);
      expected.push(value);
      for (const [name, records, message] of BAD) {
        const id = correlationId++;
        raw.send(Opcode.PRODUCE, produceFrame('ledger', rawBatch(records, { codec })), id);
        const reply = await raw.waitFor((f) => f.header.correlationId === id);
        expect(reply.header.errorCode, `${name} (${codec})`).toBe(ErrorCode.BAD_RECORD_BATCH);
        expect(decodeErrorPayload(reply.payload), `${name} (${codec})`).toMatch(message);
        // Interleave good messages from a well-behaved producer on its own connection.
        const next = `good-${good++}`;
        await producer.send({ topic: 'ledger', partition: 0, key: 'acct', value: next });
        expected.push(next);
      }
    }
    await producer.send({ topic: 'ledger', partition: 0, key: 'acct', value: 'last' });
    expected.push('last');
    // The raw connection was never dropped: a refused batch is an answer, not a protocol error.
    expect(raw.closed).toBe(false);
    raw.socket.destroy();

    const consumer = client.consumer({ topics: ['ledger'], from: 'earliest' });
    const messages = await takeUntil(consumer, 'last');
    await consumer.close();
    expect(messages.map((m) => valueString(m))).toEqual(expected);
    expect(messages.map((m) => m.offset)).toEqual(expected.map((_, i) => BigInt(i)));

    // The key's stream holds the good events only, with versions 0…n−1.
    const stream = client.consumer({ stream: { topic: 'ledger', key: 'acct' }, from: 0 });
    const events = await takeUntil(stream, 'last');
    await stream.close();
    expect(events.map((e) => valueString(e))).toEqual(expected);
    expect(events.map((e) => e.sequence)).toEqual(expected.map((_, i) => i));
    await client.close();
  });
});
