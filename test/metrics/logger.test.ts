import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { BrokerCore } from '../../src/broker/broker-core.js';
import { type BrokerLogger, createLogger } from '../../src/metrics/logger.js';
import { tempDir } from '../harness/temp-dir.js';

function capture(): { stream: Writable; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(
        ...chunk
          .toString()
          .split('\n')
          .filter((l) => l !== ''),
      );
      done();
    },
  });
  return { stream, lines };
}

describe('logger', () => {
  it('writes JSON lines at or above the level', async () => {
    const { stream, lines } = capture();
    const logger = createLogger({ level: 'info', pretty: false, stream });
    logger.debug({ hidden: true }, 'not shown');
    logger.info({ remote: '127.0.0.1:1' }, 'connection ready');
    logger.error({ code: 'X' }, 'bad');
    await new Promise((r) => setTimeout(r, 20));
    expect(lines).toHaveLength(2);
    expect(JSON.parse(lines[0]!)).toMatchObject({
      level: 30,
      remote: '127.0.0.1:1',
      msg: 'connection ready',
    });
  });

  it('writes readable lines in pretty mode', () => {
    const { stream, lines } = capture();
    const logger = createLogger({ level: 'warn', pretty: true, stream });
    logger.info({}, 'skipped');
    logger.warn({ offset: 5n, topic: 't' }, 'recovery truncated a torn tail');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^\S+Z WARN {2}recovery truncated a torn tail offset=5 topic=t$/);
  });

  it('reports a torn tail found at startup', async () => {
    const dataDir = await tempDir('ms-log-');
    const events: Array<{ level: string; message: string; fields: Record<string, unknown> }> = [];
    const record =
      (level: string): BrokerLogger[keyof BrokerLogger] =>
      (fields, message) =>
        events.push({ level, message, fields });
    const logger: BrokerLogger = {
      info: record('info'),
      warn: record('warn'),
      error: record('error'),
      debug: record('debug'),
    };
    try {
      const core = await BrokerCore.start({ dataDir });
      await core.execute('createTopic', { name: 't', partitions: 1 });
      await core.close();
      await appendFile(join(dataDir, 'topics', 't', '0', '00000000000000000000.log'), Buffer.alloc(100, 7));
      const reopened = await BrokerCore.start({ dataDir, logger });
      await reopened.close();
      expect(events).toContainEqual({
        level: 'warn',
        message: 'recovery truncated a torn tail',
        fields: expect.objectContaining({ topic: 't', bytes: 100 }),
      });
    } finally {
    }
  });
});
