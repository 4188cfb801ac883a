// The in-process transport's request deadlines: a request the core does not answer in time fails
// with the retriable REQUEST_TIMEOUT (one timer checks every pending request, so within its 50 ms
// granularity), an answered one is not failed later, and closing the transport ends what is still
// waiting with CONNECTION_CLOSED. A real embedded broker; a long-poll fetch at the log's end is a
// request the core holds.

import { describe, expect, it } from 'vitest';
import { InProcessTransport } from '../../src/embedded/in-process-transport.js';
import { encodeRecordBatch } from '../../src/protocol/record-batch.js';
import { startEmbeddedBroker } from '../harness/embedded.js';
import { errorCodeOf } from '../harness/error-code.js';

describe('InProcessTransport deadlines', () => {
  it('times out a request the core holds, answers the others, and ends waiting ones on close', async () => {
    const broker = await startEmbeddedBroker();
    await broker.core.execute('createTopic', { name: 'quiet', partitions: 1 });
    const transport = new InProcessTransport(broker.core);
    const longPoll = { topic: 'quiet', partition: 0, offset: 0n, maxBytes: 1024, maxWaitMs: 5_000 };

    const started = performance.now();
    expect(await errorCodeOf(transport.request('fetch', longPoll, { timeoutMs: 100 }))).toBe(
      'REQUEST_TIMEOUT',
    );
    const took = performance.now() - started;
    expect(took).toBeGreaterThanOrEqual(100);
    expect(took).toBeLessThan(1_000);

    // Answered before its deadline: the answer stands, and nothing fails it afterwards.
    const receipt = await transport.request(
      'produce',
      { topic: 'quiet', partition: 0, acks: 1, batch: encodeRecordBatch([{ value: 'x' }]) },
      { timeoutMs: 100 },
    );
    expect(receipt.baseOffset).toBe(0n);
    await new Promise((resolve) => setTimeout(resolve, 200));
    // Nothing pending: the deadline timer has stopped (it would keep an idle process awake).
    expect(transport.checkingDeadlines).toBe(false);

    const waiting = errorCodeOf(
      transport.request('fetch', { ...longPoll, offset: 1n }, { timeoutMs: 30_000 }),
    );
    await transport.close();
    expect(await waiting).toBe('CONNECTION_CLOSED');
    expect(await errorCodeOf(transport.request('listTopics', {}, { timeoutMs: 100 }))).toBe(
      'CONNECTION_CLOSED',
    );
  });
});
