// BROKER_DRAIN (0x0122): moves leadership of every partition a broker leads to another in-sync
// replica, and keeps the broker from being chosen as leader while it is drained (recorded in the
// control plane, so it outlives controller changes); `cancel` ends the drain. Answered by the
// controller. Layouts (little-endian; string = u16 length + UTF-8; counts are u32):
//
//   req: brokerId i32 (≥ 0) | cancel bool
//   res: brokerId i32 | drained bool | drainedBrokers BrokerIds | movedCount u32 | LeaderMove × movedCount |
//        stayedCount u32 | Stayed × stayedCount
//   LeaderMove  topic string | partition u32 | from i32 | to i32 | leaderEpoch i32
//   Stayed      topic string | partition u32   (still led by the broker: no other live in-sync replica)
//   BrokerIds   count u32 | id i32 (≥ 0) × count

import { errorOf } from '../error-codes.js';
import { Opcode } from '../opcodes.js';
import { defineCommand } from './command.js';
import {
  type LeaderMove,
  MIN_LEADER_MOVE_BYTES,
  readLeaderMove,
  writeLeaderMove,
} from './reassign-commands.js';
import { readBrokerIds, writeBrokerIds } from './topic-commands.js';

export interface DrainBrokerRequest {
  readonly brokerId: number;
  /** Ends the drain (undrain) instead. */
  readonly cancel?: boolean;
}

export interface DrainBrokerResponse {
  readonly brokerId: number;
  /** Whether the broker is drained now. */
  readonly drained: boolean;
  /** Every drained broker of the cluster after this request. */
  readonly drainedBrokers: readonly number[];
  /** Leadership moved away from the broker. */
  readonly moved: LeaderMove[];
  /** Partitions it still leads: no other live in-sync replica could take over. */
  readonly stayed: Array<{ topic: string; partition: number }>;
}

export const drainBrokerCommand = defineCommand<DrainBrokerRequest, DrainBrokerResponse>({
  opcode: Opcode.BROKER_DRAIN,
  encodeRequest: (w, req) => {
    w.i32(req.brokerId).bool(req.cancel === true);
  },
  decodeRequest: (r) => {
    const brokerId = r.i32();
    if (brokerId < 0) throw errorOf('MALFORMED_PAYLOAD', `broker id ${brokerId}`);
    return r.bool() ? { brokerId, cancel: true } : { brokerId };
  },
  encodeResponse: (w, res) => {
    w.i32(res.brokerId).bool(res.drained);
    writeBrokerIds(w, res.drainedBrokers);
    w.u32(res.moved.length);
    for (const move of res.moved) writeLeaderMove(w, move);
    w.u32(res.stayed.length);
    for (const stay of res.stayed) w.string(stay.topic).u32(stay.partition);
  },
  decodeResponse: (r) => {
    const brokerId = r.i32();
    const drained = r.bool();
    const drainedBrokers = readBrokerIds(r, 'drainedBrokers');
    const movedCount = r.count(MIN_LEADER_MOVE_BYTES);
    const moved: LeaderMove[] = [];
    for (let i = 0; i < movedCount; i++) moved.push(readLeaderMove(r));
    const stayedCount = r.count(2 + 4);
    const stayed: Array<{ topic: string; partition: number }> = [];
    for (let i = 0; i < stayedCount; i++) stayed.push({ topic: r.string(), partition: r.u32() });
    return { brokerId, drained, drainedBrokers, moved, stayed };
  },
});
