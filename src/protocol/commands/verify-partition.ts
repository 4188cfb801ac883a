// PARTITION_VERIFY (0x0613): an admin asks for anti-entropy now (docs/replication.md,
// "Anti-entropy"): every follower replica of a topic (or of one partition) compares its sealed
// segments with its leader's and repairs what differs, and the answer says what each found. The
// broker asked runs the check for the replicas it follows and passes the request on, with `here`,
// to every other broker that holds a replica of the topic.
//
// Layout (little-endian; string = u16 length + UTF-8):
//   req: topic string | partition i32 (-1: every partition) | here u8 (1: only this broker's
//        replicas; set by a broker that passes the request on)
//   res: count u32 | PartitionVerify × count | failed u32 | (broker i32 | reason string) × failed
//        PartitionVerify = broker i32 | partition u32 | leader i32 | segmentsCompared u32 |
//                          segmentsDiffering u32 | segmentsRepaired u32 | bytesRepaired i64 |
//                          skipped u32 | problems u32 | string × problems

import { errorOf } from '../error-codes.js';
import { Opcode } from '../opcodes.js';
import { defineCommand } from './command.js';

export interface VerifyPartitionRequest {
  topic: string;
  /** -1: every partition of the topic. */
  partition: number;
  /** Only the replicas of the broker asked (brokers set it when they pass the request on). */
  here: boolean;
}

/** What one follower replica's check found. */
export interface PartitionVerifyResult {
  /** The broker holding the follower replica that was checked. */
  broker: number;
  partition: number;
  leader: number;
  segmentsCompared: number;
  segmentsDiffering: number;
  segmentsRepaired: number;
  bytesRepaired: number;
  /** Segments not compared (another shape on the leader, a compacted topic, leadership moving). */
  skipped: number;
  /** Why segments that differed were not repaired, or why the check stopped. */
  problems: string[];
}

export interface VerifyPartitionResponse {
  results: PartitionVerifyResult[];
  /** Brokers holding replicas of the topic that could not run their check. */
  failed: Array<{ broker: number; reason: string }>;
}

const RESULT_MIN_BYTES = 4 + 4 + 4 + 4 + 4 + 4 + 8 + 4 + 4;

export const verifyPartitionCommand = defineCommand<VerifyPartitionRequest, VerifyPartitionResponse>({
  opcode: Opcode.PARTITION_VERIFY,
  encodeRequest: (w, req) => {
    w.string(req.topic)
      .i32(req.partition)
      .u8(req.here ? 1 : 0);
  },
  decodeRequest: (r) => {
    const topic = r.string();
    const partition = r.i32();
    if (topic.length === 0) throw errorOf('MALFORMED_PAYLOAD', 'empty topic name');
    if (partition < -1)
      throw errorOf('MALFORMED_PAYLOAD', `partition ${partition}; ≥ 0, or -1 for every one`);
    return { topic, partition, here: r.bool() };
  },
  encodeResponse: (w, res) => {
    w.u32(res.results.length);
    for (const result of res.results) {
      w.i32(result.broker).u32(result.partition).i32(result.leader);
      w.u32(result.segmentsCompared).u32(result.segmentsDiffering).u32(result.segmentsRepaired);
      w.i64(BigInt(result.bytesRepaired)).u32(result.skipped).u32(result.problems.length);
      for (const problem of result.problems) w.string(problem);
    }
    w.u32(res.failed.length);
    for (const failure of res.failed) w.i32(failure.broker).string(failure.reason);
  },
  decodeResponse: (r) => {
    const results: PartitionVerifyResult[] = [];
    const count = r.count(RESULT_MIN_BYTES);
    for (let i = 0; i < count; i++) {
      const broker = r.i32();
      const partition = r.u32();
      const leader = r.i32();
      const segmentsCompared = r.u32();
      const segmentsDiffering = r.u32();
      const segmentsRepaired = r.u32();
      const bytesRepaired = r.int();
      const skipped = r.u32();
      const problems: string[] = [];
      const problemCount = r.count(2);
      for (let p = 0; p < problemCount; p++) problems.push(r.string());
      results.push({
        broker,
        partition,
        leader,
        segmentsCompared,
        segmentsDiffering,
        segmentsRepaired,
        bytesRepaired,
        skipped,
        problems,
      });
    }
    const failed: VerifyPartitionResponse['failed'] = [];
    const failures = r.count(4 + 2);
    for (let i = 0; i < failures; i++) failed.push({ broker: r.i32(), reason: r.string() });
    return { results, failed };
  },
});
