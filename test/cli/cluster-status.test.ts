// `cluster status` against a broker that runs alone: a cluster of one, itself the controller,
// nothing under-replicated or offline.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/cli/main.js';
import { Broker } from '../../src/embedded/broker.js';
import { useTempDir } from '../harness/temp-dir.js';

const dir = useTempDir('ms-cluster-status-', 'all');
let broker: Broker;

beforeAll(async () => {
  broker = await Broker.start({ dataDir: dir.path, port: 0 });
  const admin = broker.connect();
  await admin.admin.createTopic({ name: 'alone', partitions: 2 });
  await admin.close();
});
afterAll(async () => {
  await broker.stop();
});

async function cli(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(argv, { env: {}, out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('cluster status', () => {
  it('shows a broker alone as a cluster of one', async () => {
    const address = `127.0.0.1:${broker.address!.port}`;
    const human = await cli('--broker', address, 'cluster', 'status');
    expect(human.code).toBe(0);
    expect(human.out).toMatch(/cluster:\s+none \(a broker alone\)/);
    expect(human.out).toMatch(/controller:\s+broker 0/);
    expect(human.out).toMatch(/partitions:\s+2/);
    const json = JSON.parse((await cli('--json', '--broker', address, 'cluster', 'status')).out) as {
      brokers: Array<{ id: number; address: string }>;
      underReplicated: unknown[];
      offline: unknown[];
    };
    expect(json.brokers).toEqual([{ id: 0, address }]);
    expect(json.underReplicated).toEqual([]);
    expect(json.offline).toEqual([]);
  });
});
