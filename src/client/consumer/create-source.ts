// Which kind of consumer the options ask for: one stream, a group member, or plain topics; and
// the option combinations that make no sense, refused before anything is sent.

import { errorOf } from '../../protocol/error-codes.js';
import type { ConsumerSource } from './consumer-source.js';
import type { Delivery } from './delivery.js';
import { GroupConsumer } from './group-consumer.js';
import type { ConsumerOptions } from './options.js';
import { PlainConsumer } from './plain-consumer.js';
import { StreamConsumer } from './stream-consumer.js';

export function createSource(delivery: Delivery, options: ConsumerOptions): ConsumerSource {
  if ((options.topics === undefined) === (options.stream === undefined)) {
    throw errorOf('INVALID_REQUEST', 'a consumer takes either `topics` or `stream`');
  }
  if (options.stream !== undefined) {
    if (options.group !== undefined) {
      throw errorOf('INVALID_REQUEST', 'a group consumer reads topics, not a single stream');
    }
    return new StreamConsumer(delivery, options.stream, options.from ?? 'earliest');
  }
  if (options.group !== undefined) return new GroupConsumer(delivery, { ...options, group: options.group });
  return new PlainConsumer(delivery, options);
}
