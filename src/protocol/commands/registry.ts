// Every request/response command by name, so transports and the dispatcher stay generic. The
// names are the client API's vocabulary; the opcodes are the wire's.

import { brokerHeartbeatCommand } from './broker-heartbeat-command.js';
import type { CommandCodec } from './command.js';
import { configHistoryCommand, configRollbackCommand, configSetCommand } from './config-commands.js';
import { handshakeCommand, pingCommand } from './control.js';
import {
  fetchCommand,
  initProducerIdCommand,
  listOffsetsCommand,
  produceCommand,
  readStreamCommand,
  subscribeCommand,
  unsubscribeCommand,
} from './data-commands.js';
import { drainBrokerCommand } from './drain-commands.js';
import {
  commitOffsetsCommand,
  describeGroupCommand,
  fetchOffsetsCommand,
  findCoordinatorCommand,
  heartbeatCommand,
  joinGroupCommand,
  leaveGroupCommand,
  listGroupsCommand,
} from './group-commands.js';
import { metadataCommand } from './metadata-command.js';
import {
  electLeadersCommand,
  reassignmentStatusCommand,
  reassignPartitionsCommand,
} from './reassign-commands.js';
import {
  alterTopicCommand,
  createTopicCommand,
  deleteTopicCommand,
  describeTopicCommand,
  listTopicsCommand,
} from './topic-commands.js';
import { verifyPartitionCommand } from './verify-partition.js';

export const COMMANDS = {
  ping: pingCommand,
  createTopic: createTopicCommand,
  alterTopic: alterTopicCommand,
  deleteTopic: deleteTopicCommand,
  listTopics: listTopicsCommand,
  describeTopic: describeTopicCommand,
  metadata: metadataCommand,
  produce: produceCommand,
  fetch: fetchCommand,
  listOffsets: listOffsetsCommand,
  initProducerId: initProducerIdCommand,
  readStream: readStreamCommand,
  subscribe: subscribeCommand,
  unsubscribe: unsubscribeCommand,
  joinGroup: joinGroupCommand,
  heartbeat: heartbeatCommand,
  leaveGroup: leaveGroupCommand,
  commitOffsets: commitOffsetsCommand,
  fetchOffsets: fetchOffsetsCommand,
  listGroups: listGroupsCommand,
  describeGroup: describeGroupCommand,
  findCoordinator: findCoordinatorCommand,
  configSet: configSetCommand,
  configHistory: configHistoryCommand,
  configRollback: configRollbackCommand,
  reassignPartitions: reassignPartitionsCommand,
  reassignmentStatus: reassignmentStatusCommand,
  drainBroker: drainBrokerCommand,
  electLeaders: electLeadersCommand,
  verifyPartition: verifyPartitionCommand,
  brokerHeartbeat: brokerHeartbeatCommand,
} as const;

/** Authentication and users (auth-commands.ts): answered by the connection, never by the broker core. */
export {
  authenticateFinishCommand,
  authenticateStartCommand,
  userAlterCommand,
  userListCommand,
} from './auth-commands.js';
export { handshakeCommand };

export type CommandName = keyof typeof COMMANDS;
export type RequestOf<K extends CommandName> =
  (typeof COMMANDS)[K] extends CommandCodec<infer Q, unknown> ? Q : never;
export type ResponseOf<K extends CommandName> =
  (typeof COMMANDS)[K] extends CommandCodec<unknown, infer S> ? S : never;

const byOpcode = new Map<number, CommandName>(
  (Object.keys(COMMANDS) as CommandName[]).map((name) => [COMMANDS[name].opcode, name]),
);

export function commandForOpcode(opcode: number): CommandName | undefined {
  return byOpcode.get(opcode);
}
