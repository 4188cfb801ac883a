// The test harness itself: temporary directories are gone after their test, a spawned broker
// serves, stops by its PID with exit code 0 and takes its data directory with it, a broker a test
// forgot to stop is stopped when the test ends, and a serve that must refuse to start says why; an
// embedded broker is stopped and its directory removed when its test ends; until waits for values
// and conditions and gives up at once when told why; a cluster of nodes on etcd replicates a topic
// to every broker and leaves nothing behind.
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { connect } from '../../src/client/connect.js';
import { MemoryStreamerError } from '../../src/common/errors.js';
import { ErrorCode } from '../../src/protocol/error-codes.js';
import { serveRefusal, startBroker } from './broker.js';
import { startNodeCluster } from './cluster.js';
import { startEmbeddedBroker } from './embedded.js';
import { etcdAvailable } from './etcd.js';
import { MEMORY_TEMP_ROOT, tempDir, useTempDir } from './temp-dir.js';
import { until } from './until.js';

/** Whether a process with this PID exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('temporary directories', () => {
  const scoped = useTempDir('ms-harness-each-');
  const seen: string[] = [];

  it('a test gets its own directories', async () => {
    const own = await tempDir('ms-harness-test-');
    expect(existsSync(scoped.path)).toBe(true);
    expect(existsSync(own)).toBe(true);
    await writeFile(join(own, 'file'), 'x');
    const inMemory = await tempDir('ms-harness-ram-', { parent: MEMORY_TEMP_ROOT });
    expect(inMemory.startsWith(MEMORY_TEMP_ROOT)).toBe(true);
    seen.push(scoped.path, own, inMemory);
  });

  it('and they are gone after it', () => {
    expect(seen).toHaveLength(3);
    for (const dir of seen) expect(existsSync(dir)).toBe(false);
    expect(scoped.path).not.toBe(seen[0]);
  });
});

describe('a broker process', () => {
  let forgotten: { pid: number; dataDir: string | undefined } | null = null;

  it('serves, stops by its PID with exit code 0 and removes the data directory it made', async () => {
    const broker = await startBroker();
    const client = await connect({ brokers: `127.0.0.1:${broker.port}` });
    await client.admin.createTopic({ name: 'harness' });
    expect((await client.admin.listTopics()).map((t) => t.name)).toContain('harness');
    await client.close();
    expect(broker.dataDir).toBeDefined();
    expect(existsSync(broker.dataDir!)).toBe(true);
    expect(await broker.stop()).toBe(0);
    expect(alive(broker.pid)).toBe(false);
    expect(existsSync(broker.dataDir!)).toBe(false);
  });

  it('one the test did not stop is running while the test runs', async () => {
    const broker = await startBroker();
    forgotten = { pid: broker.pid, dataDir: broker.dataDir };
    expect(alive(broker.pid)).toBe(true);
  });

  it('and stopped with its data directory when that test has finished', () => {
    expect(forgotten).not.toBeNull();
    expect(alive(forgotten!.pid)).toBe(false);
    expect(existsSync(forgotten!.dataDir!)).toBe(false);
  });

  it('a serve that must refuse to start: its exit code and the error it printed', async () => {
    const dir = await tempDir('ms-harness-refusal-');
    const file = join(dir, 'not-a-directory');
    await writeFile(file, 'x');
    const { code, stderr } = await serveRefusal({ dataDir: file });
    expect(code).toBe(1);
    expect(stderr).toContain(`DATA_DIR_UNUSABLE (${ErrorCode.DATA_DIR_UNUSABLE})`);
  });
});

describe('an embedded broker', () => {
  let left: { dataDir: string; port: number } | null = null;

  it('serves in this process with a temporary data directory', async () => {
    const broker = await startEmbeddedBroker({ port: 0 });
    const client = await connect({ brokers: `127.0.0.1:${broker.address!.port}` });
    await client.admin.createTopic({ name: 'embedded' });
    await client.close();
    left = { dataDir: broker.core.storageDir, port: broker.address!.port };
    expect(existsSync(left.dataDir)).toBe(true);
  });

  it('and is stopped, its directory removed, when that test has finished', async () => {
    expect(left).not.toBeNull();
    expect(existsSync(left!.dataDir)).toBe(false);
    await expect(
      connect({ brokers: `127.0.0.1:${left!.port}`, connectTimeoutMs: 1000 }),
    ).rejects.toMatchObject({ codeName: 'BROKER_NOT_AVAILABLE' });
  });
});

describe('until', () => {
  it('returns the first value, or true once a condition holds', async () => {
    let tries = 0;
    expect(await until(async () => (++tries >= 3 ? tries : null), { intervalMs: 1 })).toBe(3);
    let calls = 0;
    expect(await until(() => ++calls === 2, { intervalMs: 1 })).toBe(true);
  });

  it('fails with what it waited for and the last error', async () => {
    await expect(
      until(
        () => {
          throw new Error('not yet');
        },
        { what: 'the impossible', timeoutMs: 50, intervalMs: 5 },
      ),
    ).rejects.toThrow(/the impossible not met within 50 ms: Error: not yet/);
  });

  it('gives up at once when abortIf names a reason', async () => {
    // A deadline beyond the test's own timeout: only abortIf can end this wait in time.
    await expect(
      until(() => false, { what: 'a ready line', timeoutMs: 600_000, abortIf: () => 'the process exited' }),
    ).rejects.toThrow('a ready line will not be met: the process exited');
  });
});

describe.skipIf(!etcdAvailable())('a cluster of broker nodes', () => {
  it('replicates a topic to every broker, and stop() leaves no process or directory behind', async () => {
    const cluster = await startNodeCluster({ name: 'harness' });
    const dataDirs = [1, 2, 3].map((id) => cluster.dataDir(id));
    try {
      expect(cluster.nodes.map((node) => node.core.brokerId)).toEqual([1, 2, 3]);
      const client = await connect({ brokers: cluster.addresses() });
      try {
        // Only the controller creates topics; until then the brokers answer NOT_CONTROLLER.
        await until(async () => {
          try {
            return await client.admin.createTopic({ name: 'spread', partitions: 1, replicationFactor: 3 });
          } catch (error) {
            if (error instanceof MemoryStreamerError && error.retriable) return null;
            throw error;
          }
        });
        const described = await until(async () => {
          const topic = await client.admin.describeTopic('spread');
          return topic.partitions[0]!.isr.length === 3 ? topic : null;
        });
        expect([...described.partitions[0]!.replicas].sort()).toEqual([1, 2, 3]);
      } finally {
        await client.close();
      }
      for (const dir of dataDirs) expect(existsSync(dir)).toBe(true);
    } finally {
      await cluster.stop();
    }
    expect(alive(cluster.etcd.pid)).toBe(false);
    for (const dir of dataDirs) expect(existsSync(dir)).toBe(false);
  }, 60_000);
});
