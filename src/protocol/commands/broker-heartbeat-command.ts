// BROKER_HEARTBEAT (0x0603): every broker of a cluster tells the controller it is alive, tens of
// milliseconds apart. The controller fences a broker it has not heard from for the fencing time
// (its partitions get new leaders from their ISR); a broker whose heartbeats the controller has
// not answered for that long stops acting as a leader on its own. Broker to broker only; answered
// by the controller (NOT_CONTROLLER elsewhere, BROKER_SESSION_UNKNOWN when the controller does not
// know the registration the heartbeat names). Layouts (little-endian):
//
//   req: brokerId i32 (≥ 0) | startedAtMs u64 (the broker's registration: a restarted broker is a
//        new one) | controllerEpoch i64 (the controller term the broker believes in; -1 none) |
//        shuttingDown bool (a controlled shutdown: move leadership away from this broker)
//   res: controllerEpoch i64 (the term that answered) | fencingTimeMs u32 | metadataRevision i64
//        (the etcd revision the controller's metadata was at: a broker that was fenced acts as a
//        leader again only once its own metadata has reached it, so that it has seen the leaders
//        elected in its place)

import { errorOf } from '../error-codes.js';
import { Opcode } from '../opcodes.js';
import { defineCommand } from './command.js';

export interface BrokerHeartbeatRequest {
  readonly brokerId: number;
  readonly startedAtMs: number;
  /** The controller epoch the broker's metadata names (-1n when it knows none). */
  readonly controllerEpoch: bigint;
  readonly shuttingDown: boolean;
}

export interface BrokerHeartbeatResponse {
  readonly controllerEpoch: bigint;
  /** How long the controller waits for a heartbeat before it fences the broker. */
  readonly fencingTimeMs: number;
  readonly metadataRevision: bigint;
}

export const brokerHeartbeatCommand = defineCommand<BrokerHeartbeatRequest, BrokerHeartbeatResponse>({
  opcode: Opcode.BROKER_HEARTBEAT,
  encodeRequest: (w, req) => {
    w.i32(req.brokerId).u64(BigInt(req.startedAtMs)).i64(req.controllerEpoch).bool(req.shuttingDown);
  },
  decodeRequest: (r) => {
    const brokerId = r.i32();
    if (brokerId < 0) throw errorOf('MALFORMED_PAYLOAD', `broker id ${brokerId}`);
    const startedAt = r.u64();
    if (startedAt > BigInt(Number.MAX_SAFE_INTEGER))
      throw errorOf('MALFORMED_PAYLOAD', `startedAtMs ${startedAt}`);
    const controllerEpoch = r.i64();
    if (controllerEpoch < -1n) throw errorOf('MALFORMED_PAYLOAD', `controller epoch ${controllerEpoch}`);
    return { brokerId, startedAtMs: Number(startedAt), controllerEpoch, shuttingDown: r.bool() };
  },
  encodeResponse: (w, res) => {
    w.i64(res.controllerEpoch).u32(res.fencingTimeMs).i64(res.metadataRevision);
  },
  decodeResponse: (r) => ({ controllerEpoch: r.i64(), fencingTimeMs: r.u32(), metadataRevision: r.i64() }),
});
