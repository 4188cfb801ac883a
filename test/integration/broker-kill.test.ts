// kill -9 of a real broker process between produce and consume: every acknowledged message comes
// back after the restart, in order per partition, without duplicates (idempotent producer).
import { describe, expect, it } from 'vitest';
import { connect } from '../../src/client/connect.js';
import type { Receipt } from '../../src/client/producer.js';
import { startBroker } from '../harness/broker.js';
import { tempDir } from '../harness/temp-dir.js';
import { until } from '../harness/until.js';

describe('broker killed with SIGKILL', () => {
  it('returns every acknowledged message after a restart, once, in order', async () => {
    const dataDir = await tempDir('ms-kill-');
    let broker = await startBroker({ dataDir });
    try {
      const client = await connect({ brokers: `127.0.0.1:${broker.port}` });
      await client.admin.createTopic({ name: 'ledger', partitions: 3, config: { durability: 'always' } });
      const producer = client.producer({ retries: 0 });
      const acknowledged: Receipt[] = [];
      const values = new Map<string, string>();
      let sent = 0;
      const sending = (async () => {
        for (;;) {
          const batch = Array.from({ length: 50 }, () => {
            const value = `m-${sent++}`;
            return { topic: 'ledger', key: `account-${sent % 17}`, value };
          });
          try {
            const receipts = await producer.sendMany(batch);
            receipts.forEach((r, i) => {
              acknowledged.push(r);
              values.set(`${r.partition}:${r.offset}`, batch[i]!.value);
            });
          } catch {
            return;
          }
        }
      })();
      await until(() => acknowledged.length >= 500, { what: '500 acknowledged messages', intervalMs: 10 });
      await broker.kill();
      await sending;
      await client.close().catch(() => undefined);

      broker = await startBroker({ dataDir, port: broker.port });
      const reader = await connect({ brokers: `127.0.0.1:${broker.port}` });
      const described = await reader.admin.describeTopic('ledger');
      const total = described.partitions.reduce((n, p) => n + Number(p.logEndOffset), 0);
      expect(total).toBeGreaterThanOrEqual(acknowledged.length);
      const consumer = reader.consumer({ topics: ['ledger'] });
      const seen = new Map<string, string>();
      const lastOffset = new Map<number, bigint>();
      for await (const message of consumer) {
        const id = `${message.partition}:${message.offset}`;
        expect(seen.has(id)).toBe(false);
        const previous = lastOffset.get(message.partition);
        if (previous !== undefined) expect(message.offset).toBe(previous + 1n);
        lastOffset.set(message.partition, message.offset);
        seen.set(id, message.value!.toString());
        if (seen.size === total) break;
      }
      for (const [id, value] of values) expect(seen.get(id)).toBe(value);
      expect(new Set(seen.values()).size).toBe(seen.size);
      await reader.close();
    } finally {
      await broker.kill();
    }
  });
});
