// `topic create --if-not-exists`, `topic alter --allow-key-movement`, unknown topic flags, the
// replication flags and `topic describe`'s replication columns, against a real broker over TCP.
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
  it('create --storage memory makes a memory topic; describe, --json and list report its storage', async () => {
    const created = await cli(
      'topic',
      'create',
      'ticks',
      '--storage',
      'memory',
      '--retention-bytes',
      '1048576',
    );
    expect(created).toEqual({
      code: EXIT.ok,
      text: 'created topic ticks with 1 partition(s) in memory (at most about 1179648 bytes per partition; lost on restart)',
    });
    const described = await cli('topic', 'describe', 'ticks');
    expect(described.text).toMatch(/storage:\s+memory/);
    expect(described.text).toMatch(/durability:\s+never/);
    const json = JSON.parse((await cli('--json', 'topic', 'describe', 'ticks')).text) as {
      topic: { storage: string; config: { retentionBytes: number } };
    };
    expect(json.topic).toMatchObject({ storage: 'memory', config: { retentionBytes: 1048576 } });
    await cli('topic', 'create', 'ondisk');
    expect((await cli('topic', 'describe', 'ondisk')).text).toMatch(/storage:\s+disk/);
    expect((await cli('topic', 'list')).text).toMatch(/ticks\s+1\s+never\s+delete\s+-1\s+memory/);
    const unbounded = await cli(
      'topic',
      'create',
      'nobound',
      '--storage',
      'memory',
      '--retention-bytes',
      '-1',
    );
    expect(unbounded.code).toBe(EXIT.failed);
    expect(unbounded.text).toContain(`MEMORY_TOPIC_UNBOUNDED (${ErrorCode.MEMORY_TOPIC_UNBOUNDED})`);
    const usage = await cli('topic', 'create', 'tape', '--storage', 'tape');
    expect(usage.code).toBe(EXIT.usage);
    expect(usage.text).toContain('--storage');
  });

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

  it('create --replication-factor above 1 is refused on a broker without a cluster, naming the cause', async () => {
    const refused = await cli('topic', 'create', 'copies', '--replication-factor', '3');
    expect(refused.code).toBe(EXIT.failed);
    expect(refused.text).toContain(`NOT_ENOUGH_BROKERS (${ErrorCode.NOT_ENOUGH_BROKERS})`);
    expect(refused.text).toContain('this broker runs alone, without a cluster');
    expect((await cli('topic', 'list')).text).not.toContain('copies');
    const usage = await cli('topic', 'create', 'copies', '--replication-factor', '0');
    expect(usage.code).toBe(EXIT.usage);
    expect(usage.text).toContain('--replication-factor');
  });

  it('create --min-insync-replicas above the replication factor is INVALID_CONFIG; alter sets it', async () => {
    const refused = await cli('topic', 'create', 'isr', '--min-insync-replicas', '2');
    expect(refused.code).toBe(EXIT.failed);
    expect(refused.text).toContain(`INVALID_CONFIG (${ErrorCode.INVALID_CONFIG})`);
    expect(refused.text).toContain('minInsyncReplicas=2 is more than replicationFactor=1');
    const created = await cli(
      'topic',
      'create',
      'isr',
      '--replication-factor',
      '1',
      '--min-insync-replicas',
      '1',
    );
    expect(created).toEqual({ code: EXIT.ok, text: 'created topic isr with 1 partition(s)' });
    const altered = await cli('topic', 'alter', 'isr', '--min-insync-replicas', '1');
    expect(altered.code).toBe(EXIT.ok);
    expect(altered.text).toMatch(/min\.insync\.replicas:\s+1/);
  });

  it('describe shows the replication factor, and leader, replicas, ISR and epoch per partition', async () => {
    await cli('topic', 'create', 'shown', '-p', '2');
    const { code, text } = await cli('topic', 'describe', 'shown');
    expect(code).toBe(EXIT.ok);
    expect(text).toMatch(/replication\.factor:\s+1/);
    expect(text).toMatch(/min\.insync\.replicas:\s+1/);
    const lines = text.split('\n');
    const header = lines.find((line) => /^PARTITION\s/.test(line))!;
    expect(header.split(/\s{2,}/)).toEqual([
      'PARTITION',
      'START OFFSET',
      'HIGH WATERMARK',
      'LOG END',
      'BYTES',
      'LEADER',
      'REPLICAS',
      'ISR',
      'EPOCH',
    ]);
    const rows = lines.slice(lines.indexOf(header) + 1).filter((line) => /^\s*\d/.test(line));
    expect(rows.map((row) => row.trim().split(/\s+/))).toEqual([
      ['0', '0', '0', '0', '0', '0', '0', '0', '0'],
      ['1', '0', '0', '0', '0', '0', '0', '0', '0'],
    ]);
  });
});
