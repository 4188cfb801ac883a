// METADATA's codec: what a client routes by, byte-exact in both directions, and what it refuses.
import { describe, expect, it } from 'vitest';
import { BinaryReader } from '../../../src/protocol/codec/binary-reader.js';
import { BinaryWriter } from '../../../src/protocol/codec/binary-writer.js';
import type { MetadataRequest, MetadataResponse } from '../../../src/protocol/commands/data-types.js';
import { metadataCommand } from '../../../src/protocol/commands/metadata-command.js';
import { COMMANDS, commandForOpcode } from '../../../src/protocol/commands/registry.js';
import { ErrorCode } from '../../../src/protocol/error-codes.js';
import { Opcode, opcodeInfo } from '../../../src/protocol/opcodes.js';

function request(req: MetadataRequest): Buffer {
  const w = new BinaryWriter(16);
  metadataCommand.encodeRequest(w, req);
  return w.finish();
}

function decodeRequest(bytes: Buffer): MetadataRequest {
  const r = new BinaryReader(bytes);
  const decoded = metadataCommand.decodeRequest(r);
  r.end();
  return decoded;
}

function response(res: MetadataResponse): Buffer {
  const w = new BinaryWriter(16);
  metadataCommand.encodeResponse(w, res);
  return w.finish();
}

function decodeResponse(bytes: Buffer): MetadataResponse {
  const r = new BinaryReader(bytes);
  const decoded = metadataCommand.decodeResponse(r);
  r.end();
  return decoded;
}

const CLUSTER: MetadataResponse = {
  clusterId: 'c0ffee00-1111-4222-8333-444455556666',
  controllerId: 2,
  brokers: [
    { id: 1, host: '10.0.0.1', port: 9092, rack: 'eu-west-1a' },
    { id: 2, host: 'broker-2.internal', port: 9093 },
    { id: 3, host: '::1', port: 65535, rack: '' },
  ],
  topics: [
    {
      name: 'orders',
      error: null,
      id: 'a1b2',
      internal: false,
      partitions: [
        {
          partition: 0,
          error: null,
          leader: 1,
          leaderEpoch: 4,
          replicas: [1, 2, 3],
          isr: [1, 2],
          offlineReplicas: [3],
        },
        {
          partition: 1,
          error: 'LEADER_NOT_AVAILABLE',
          leader: -1,
          leaderEpoch: 9,
          replicas: [2, 3, 1],
          isr: [],
          offlineReplicas: [2, 3, 1],
        },
      ],
    },
    { name: '__consumer_offsets', error: null, id: 'ff00', internal: true, partitions: [] },
    { name: 'nope', error: 'UNKNOWN_TOPIC', id: '', internal: false, partitions: [] },
  ],
};

describe('METADATA', () => {
  it('is a control opcode 0x0106 in the client registry', () => {
    expect(COMMANDS.metadata.opcode).toBe(0x0106);
    expect(commandForOpcode(Opcode.METADATA)).toBe('metadata');
    expect(opcodeInfo(0x0106)).toEqual({ name: 'METADATA', control: true });
  });

  it('asks for every topic, or for the ones named', () => {
    expect(request({}).toString('hex')).toBe('0100000000');
    expect(decodeRequest(request({}))).toEqual({});
    const named = request({ topics: ['orders', 'a'] });
    expect(named.toString('hex')).toBe(
      `00${'02000000'}0600${Buffer.from('orders').toString('hex')}0100${'61'}`,
    );
    expect(decodeRequest(named)).toEqual({ topics: ['orders', 'a'] });
    expect(decodeRequest(request({ topics: [] }))).toEqual({ topics: [] });
  });

  it('refuses "every topic" that also names topics, and counts past the payload', () => {
    expect(() => decodeRequest(Buffer.from('01010000000000', 'hex'))).toThrow(/allTopics with 1 topic names/);
    expect(() => decodeRequest(Buffer.from('00ffffffff', 'hex'))).toThrow(
      expect.objectContaining({ code: ErrorCode.MALFORMED_PAYLOAD }),
    );
  });

  it('round-trips brokers, racks, the controller, topic and partition errors', () => {
    expect(decodeResponse(response(CLUSTER))).toEqual(CLUSTER);
    const single: MetadataResponse = {
      clusterId: null,
      controllerId: 0,
      brokers: [{ id: 0, host: '', port: 0 }],
      topics: [],
    };
    expect(decodeResponse(response(single))).toEqual(single);
  });

  it('writes the layout of docs/protocol.md', () => {
    const bytes = response({
      clusterId: 'c',
      controllerId: -1,
      brokers: [{ id: 7, host: 'h', port: 9092 }],
      topics: [
        {
          name: 't',
          error: null,
          id: 'i',
          internal: false,
          partitions: [
            {
              partition: 0,
              error: 'NOT_LEADER',
              leader: 7,
              leaderEpoch: 1,
              replicas: [7],
              isr: [7],
              offlineReplicas: [],
            },
          ],
        },
      ],
    });
    const expected = [
      '01',
      '0100',
      '63', // clusterId opt<string> "c"
      'ffffffff', // controllerId -1
      '01000000',
      '07000000',
      '0100',
      '68',
      '8423',
      '00', // 1 broker: id 7, host "h", port 9092, no rack
      '01000000',
      '0100',
      '74',
      '0000',
      '0100',
      '69',
      '00',
      '01000000', // topic "t", no error, id "i", not internal, 1 partition
      '00000000',
      'bc02',
      '07000000',
      '01000000', // partition 0, NOT_LEADER (700), leader 7, epoch 1
      '01000000',
      '07000000',
      '01000000',
      '07000000',
      '00000000', // replicas [7], isr [7], offline []
    ].join('');
    expect(bytes.toString('hex')).toBe(expected);
  });

  it('reads an error code it does not know as UNKNOWN_SERVER_ERROR', () => {
    const bytes = response({
      clusterId: null,
      controllerId: 0,
      brokers: [],
      topics: [{ name: 't', error: 'UNKNOWN_TOPIC', id: '', internal: false, partitions: [] }],
    });
    // The topic's error code sits after the counts and its name: clusterId(1) controller(4)
    // brokers(4) topics(4) name(2 + 1).
    bytes.writeUInt16LE(65000, 16);
    expect(decodeResponse(bytes).topics[0]!.error).toBe('UNKNOWN_SERVER_ERROR');
  });

  it('refuses negative broker ids in replica lists and leaders below -1', () => {
    const base: MetadataResponse = {
      clusterId: null,
      controllerId: 0,
      brokers: [],
      topics: [
        {
          name: 't',
          error: null,
          id: 'i',
          internal: false,
          partitions: [
            {
              partition: 0,
              error: null,
              leader: 0,
              leaderEpoch: 0,
              replicas: [-2],
              isr: [],
              offlineReplicas: [],
            },
          ],
        },
      ],
    };
    expect(() => decodeResponse(response(base))).toThrow(/replicas holds broker id -2/);
    const leader = structuredClone(base);
    leader.topics[0]!.partitions[0] = { ...leader.topics[0]!.partitions[0]!, leader: -3, replicas: [0] };
    expect(() => decodeResponse(response(leader))).toThrow(/leader -3/);
    expect(() =>
      decodeResponse(response({ ...base, topics: [], brokers: [{ id: -1, host: '', port: 0 }] })),
    ).toThrow(/broker id -1/);
  });
});
