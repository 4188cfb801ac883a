// The test harness itself: temporary directories are gone after their test, a spawned broker
// serves, stops by its PID with exit code 0 and takes its data directory with it, a broker a test
// forgot to stop is stopped when the test ends, and a serve that must refuse to start says why.
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { connect } from '../../src/client/connect.js';
import { ErrorCode } from '../../src/protocol/error-codes.js';
import { serveRefusal, startBroker } from './broker.js';
import { tempDir, useTempDir } from './temp-dir.js';

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
    seen.push(scoped.path, own);
  });

  it('and they are gone after it', () => {
    expect(seen).toHaveLength(2);
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
