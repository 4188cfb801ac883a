// PARTITION_VERIFY: round trip, what the decoder refuses, its place in the client registry, and a
// broker without a cluster refusing it with NEEDS_CLUSTER (over TCP, through the admin API).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BrokerNode } from '../../../src/broker/broker-node.js';
import { connect } from '../../../src/client/connect.js';
import { MemoryStreamerError } from '../../../src/common/errors.js';
import { BinaryReader } from '../../../src/protocol/codec/binary-reader.js';
import { BinaryWriter } from '../../../src/protocol/codec/binary-writer.js';
import { commandForOpcode } from '../../../src/protocol/commands/registry.js';
import {
  type VerifyPartitionResponse,
  verifyPartitionCommand,
} from '../../../src/protocol/commands/verify-partition.js';
import { Opcode } from '../../../src/protocol/opcodes.js';
import { useTempDir } from '../../harness/temp-dir.js';

const dir = useTempDir('ms-verify-');

describe('PARTITION_VERIFY', () => {
  it('round-trips a request and an answer with problems and failed brokers', () => {
    const w = new BinaryWriter(32);
    verifyPartitionCommand.encodeRequest(w, { topic: 'orders', partition: -1, here: true });
    const r = new BinaryReader(w.finish());
    expect(verifyPartitionCommand.decodeRequest(r)).toEqual({ topic: 'orders', partition: -1, here: true });
    r.end();
    const answer: VerifyPartitionResponse = {
      results: [
        {
          broker: 2,
          partition: 0,
          leader: 1,
          segmentsCompared: 12,
          segmentsDiffering: 2,
          segmentsRepaired: 1,
          bytesRepaired: 65536,
          skipped: 3,
          problems: ['segment 120: the repaired copy does not verify'],
        },
      ],
      failed: [{ broker: 3, reason: 'connection refused' }],
    };
    const out = new BinaryWriter(64);
    verifyPartitionCommand.encodeResponse(out, answer);
    const back = new BinaryReader(out.finish());
    expect(verifyPartitionCommand.decodeResponse(back)).toEqual(answer);
    back.end();
    expect(commandForOpcode(Opcode.PARTITION_VERIFY)).toBe('verifyPartition');
    expect(Opcode.PARTITION_VERIFY).toBe(0x0613);
  });

  it('refuses an empty topic name and partitions below -1', () => {
    for (const request of [
      { topic: '', partition: 0, here: false },
      { topic: 't', partition: -2, here: false },
    ]) {
      const w = new BinaryWriter(16);
      verifyPartitionCommand.encodeRequest(w, request);
      expect(() => verifyPartitionCommand.decodeRequest(new BinaryReader(w.finish()))).toThrow(
        expect.objectContaining({ codeName: 'MALFORMED_PAYLOAD' }),
      );
    }
  });

  it('a broker without a cluster answers NEEDS_CLUSTER', async () => {
    const alone = await BrokerNode.start({
      dataDir: join(dir.path, 'alone'),
      port: 0,
      memoryTrim: false,
      raiseFileLimit: false,
    });
    const client = await connect({ brokers: `127.0.0.1:${alone.address!.port}` });
    try {
      const refused = await client.admin.verifyPartitions('t').then(
        () => null,
        (error: unknown) => (error instanceof MemoryStreamerError ? error.codeName : String(error)),
      );
      expect(refused).toBe('NEEDS_CLUSTER');
    } finally {
      await client.close();
      await alone.stop({ deadlineMs: 500 });
    }
  }, 30_000);
});
