// `topic create --if-not-exists`, `topic alter --allow-key-movement` and unknown topic flags,
// against a real broker over TCP.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/cli/main.js';
import { EXIT } from '../../src/cli/output.js';
import { Broker } from '../../src/embedded/broker.js';
import { ErrorCode } from '../../src/protocol/error-codes.js';
import { useTempDir } from '../harness/temp-dir.js';

const scratch = useTempDir('ms-cli-topic-', 'all');
let dataDir: string;
let broker: Broker;

beforeAll(async () => {
  dataDir = scratch.path;
  broker = await Broker.start({ dataDir, port: 0 });
});
afterAll(async () => {
  await broker.stop();
});

async function cli(...argv: string[]): Promise<{ code: number; text: string }> {
  const lines: string[] = [];
  const code = await run(['--broker', `127.0.0.1:${broker.address!.port}`, ...argv], {
    env: {},
    out: (t) => lines.push(t),
    err: (t) => lines.push(t),
  });
  return { code, text: lines.join('\n') };
}

describe('topic flags', () => {
  it('create --if-not-exists succeeds twice and says when the topic was already there', async () => {
    expect(await cli('topic', 'create', 'orders', '-p', '2', '--if-not-exists')).toEqual({
      code: EXIT.ok,
      text: 'created topic orders with 2 partition(s)',
    });
    expect(await cli('topic', 'create', 'orders', '-p', '3', '--if-not-exists')).toEqual({
      code: EXIT.ok,
      text: 'topic orders already exists with 2 partition(s); nothing changed',
    });
    const again = await cli('topic', 'create', 'orders', '-p', '2');
    expect(again.code).toBe(EXIT.failed);
    expect(again.text).toContain('TOPIC_ALREADY_EXISTS');
  });

  it('refuses a misspelt setting, naming it', async () => {
    const { code, text } = await cli('topic', 'create', 'typo', '--retention-msx', '5');
    expect(code).toBe(EXIT.usage);
    expect(text).toContain("unknown option '--retention-msx'");
    expect((await cli('topic', 'list')).text).not.toContain('typo');
  });

  it('alter refuses to grow a topic with keyed messages unless --allow-key-movement', async () => {
    await cli('topic', 'create', 'keyed', '-p', '1');
    const client = broker.connect();
    const producer = client.producer();
    await producer.send({ topic: 'keyed', key: 'order-1', value: 'created', expectedVersion: 0 });
    await client.close();
    const refused = await cli('topic', 'alter', 'keyed', '--partitions', '4');
    expect(refused.code).toBe(EXIT.failed);
    expect(refused.text).toContain(`PARTITION_GROWTH_MOVES_KEYS (${ErrorCode.PARTITION_GROWTH_MOVES_KEYS})`);
    expect(refused.text).toContain('--allow-key-movement');
    const grown = await cli('topic', 'alter', 'keyed', '--partitions', '4', '--allow-key-movement');
    expect(grown.code).toBe(EXIT.ok);
    expect(grown.text).toMatch(/partitions:\s+4/);
  });
});
