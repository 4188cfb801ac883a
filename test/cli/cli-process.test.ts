// The CLI as a process against a broker from the real binary: a topic created without --partitions
// takes the broker's topics.partitions; a reader that closes the pipe early (`consume … | head -1`)
// ends the command cleanly (exit 0, no stack trace) and a group's run commits what it printed.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/cli/main.js';
import { startBroker, type TestBroker } from '../harness/broker.js';

let served: TestBroker;
const out: string[] = [];
const cli = (...argv: string[]) =>
  run(['--broker', `127.0.0.1:${served.port}`, ...argv], {
    env: {},
    out: (t) => out.push(t),
    err: (t) => out.push(t),
  });

beforeAll(async () => {
  served = await startBroker({ env: { MEMORYSTREAMER_TOPICS_PARTITIONS: '3' } });
});
afterAll(async () => {
  await served?.kill();
});

describe('memorystreamer CLI process', () => {
  it("creates a topic with the broker's default partition count when none is given", async () => {
    out.length = 0;
    expect(await cli('topic', 'create', 'defaulted')).toBe(0);
    expect(out.join('\n')).toBe('created topic defaulted with 3 partition(s)');
    expect(await cli('topic', 'create', 'counted', '-p', '2')).toBe(0);
    expect(out.at(-1)).toBe('created topic counted with 2 partition(s)');
  });

  it('stops cleanly when the reader of its output goes away, and commits what it printed', async () => {
    expect(await cli('topic', 'create', 'piped', '-p', '1')).toBe(0);
    expect(await cli('produce', 'piped', '--count', '2000', '--size', '50')).toBe(0);
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
    const child = spawn(
      process.execPath,
      ['--import', tsx, main, '--broker', `127.0.0.1:${served.port}`, 'consume', 'piped', '--group', 'g'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let err = '';
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    // `| head -1`: the first chunk read, then the pipe closed.
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    expect(err).not.toMatch(/EPIPE|node:events|at /);
    expect(code).toBe(0);
    out.length = 0;
    expect(await cli('--json', 'offsets', 'piped', '--group', 'g')).toBe(0);
    const [offsets] = JSON.parse(out.join('\n')) as Array<{ committed: string | number | null }>;
    expect(Number(offsets!.committed)).toBeGreaterThan(0);
  }, 30_000);
});
