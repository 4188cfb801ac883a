// Public entry point of the memorystreamer package.
export { Admin } from './client/admin.js';
export { Client, type ClientOptions } from './client/client.js';
export { type ClientTlsOptions, type ConnectOptions, connect, type SaslOptions } from './client/connect.js';
export {
  Consumer,
  type ConsumerOptions,
  type MessageBatch,
  type RefusedMessage,
  type StartPosition,
  type UndecodableBatch,
} from './client/consumer.js';
export { keyString, type Message, type MessageHeader, valueJson, valueString } from './client/message.js';
export type {
  ConsumerSecurity,
  MessageKeyring,
  ProducerSecurity,
  SigningKey,
} from './client/message-security.js';
export { Producer, type ProducerOptions, type Receipt, type SendInput } from './client/producer.js';
export { messageTraceContext } from './client/tracing.js';
export { isMemoryStreamerError, MemoryStreamerError } from './common/errors.js';
export { Broker, type BrokerOptions } from './embedded/broker.js';
export type { ConfigVersionView } from './protocol/commands/config-commands.js';
export type {
  Acks,
  BrokerView,
  DescribeTopicResponse,
  MetadataResponse,
  PartitionMetadata,
  PartitionView,
  TopicConfigView,
  TopicMetadata,
  TopicView,
} from './protocol/commands/data-types.js';
export type { CompressionCodecName } from './protocol/compression.js';
export { describeError, ERROR_TABLE, ErrorCode, type ErrorName } from './protocol/error-codes.js';
