// The broker side of reassignment, drain and leader election: the controller does them; a broker
// that is not the controller passes the request on to it over a broker-to-broker connection (one
// hop), so a client may send them to any broker. NOT_CONTROLLER comes back when no controller is
// elected, or when it changed during the hop (the client's retry then finds the new one). Broker
// heartbeats are answered by the controller only: one passed on would say nothing of the link
// between the broker and its controller.

import type { ClusterOperations } from '../../broker/replica-hooks.js';
import type { TcpTransport } from '../../client/tcp-transport.js';
import type {
  BrokerHeartbeatRequest,
  BrokerHeartbeatResponse,
} from '../../protocol/commands/broker-heartbeat-command.js';
import type { DrainBrokerRequest, DrainBrokerResponse } from '../../protocol/commands/drain-commands.js';
import type {
  ElectLeadersRequest,
  ElectLeadersResponse,
  ReassignmentStatusResponse,
  ReassignPartitionsRequest,
  ReassignPartitionsResponse,
} from '../../protocol/commands/reassign-commands.js';
import type { RequestOf, ResponseOf } from '../../protocol/commands/registry.js';
import { errorOf } from '../../protocol/error-codes.js';
import type { ClusterMember } from '../cluster-member.js';
import type { ControllerService } from './controller-service.js';

/** A drain waits up to 10 s for leadership to move: the hop allows for it. */
const FORWARD_TIMEOUT_MS = 30_000;

type OperationName = 'reassignPartitions' | 'reassignmentStatus' | 'drainBroker' | 'electLeaders';

export class ControllerOperations implements ClusterOperations {
  constructor(
    private readonly member: ClusterMember,
    /** A connection to another broker, or null while its registration is not known here. */
    private readonly linkTo: (brokerId: number) => TcpTransport | null,
  ) {}

  reassignPartitions(request: ReassignPartitionsRequest): Promise<ReassignPartitionsResponse> {
    return this.onController('reassignPartitions', request, async (service) => {
      const planned = await service.reassign(request.partitions, {
        allowReplicationFactorChange: request.allowReplicationFactorChange === true,
        replace: request.replace === true,
      });
      return {
        partitions: planned.flatMap(({ record, started }) =>
          started.map((entry) => ({ topic: record.name, ...entry })),
        ),
      };
    });
  }

  reassignmentStatus(): Promise<ReassignmentStatusResponse> {
    return this.onController('reassignmentStatus', {}, async (service) => ({
      partitions: service.reassignments(),
    }));
  }

  drainBroker(request: DrainBrokerRequest): Promise<DrainBrokerResponse> {
    return this.onController('drainBroker', request, async (service) => ({
      brokerId: request.brokerId,
      ...(await service.drain(request.brokerId, request.cancel === true)),
    }));
  }

  electLeaders(request: ElectLeadersRequest): Promise<ElectLeadersResponse> {
    return this.onController('electLeaders', request, async (service) => ({
      moved: await service.electLeaders(request.topics),
    }));
  }

  brokerHeartbeat(request: BrokerHeartbeatRequest): Promise<BrokerHeartbeatResponse> {
    return this.member.controllerService.heartbeat(request);
  }

  private async onController<K extends OperationName>(
    name: K,
    request: RequestOf<K>,
    here: (service: ControllerService) => Promise<ResponseOf<K>>,
  ): Promise<ResponseOf<K>> {
    if (this.member.isController) return here(this.member.controllerService);
    const controller = this.member.metadata.controller;
    const link = controller === null ? null : this.linkTo(controller.brokerId);
    if (controller === null || link === null)
      throw errorOf('NOT_CONTROLLER', 'no controller is elected now; try again shortly');
    return link.request(name, request, { timeoutMs: FORWARD_TIMEOUT_MS });
  }
}
