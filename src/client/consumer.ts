// The consumer's public surface: the class `client.consumer(options)` returns and its option
// types. The parts live in ./consumer/ (delivery, partition and stream feeds, and the plain, group
// and stream sources).

export { Consumer } from './consumer/consumer.js';
export type {
  ConsumerOptions,
  RefusedMessage,
  StartPosition,
  UndecodableBatch,
} from './consumer/options.js';
export type { MessageBatch } from './record-batch-view.js';
