// `memorystreamer dev cluster` as a process: etcd and three brokers come up, a replicated topic
// works through them, and SIGINT stops every process it started (by PID), with exit code 0.

import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { connect } from '../../src/client/connect.js';
import { etcdAvailable, freePort } from '../harness/etcd.js';
import { tempDir } from '../harness/temp-dir.js';
import { until } from '../harness/until.js';

async function freePortRange(span: number): Promise<number> {
  // A port whose next `span` ports are free now (good enough on a quiet test machine).
  for (;;) {
    const base = await freePort();
    if (base + span < 65_000) return base;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe.skipIf(!etcdAvailable())('dev cluster', () => {
  it('starts etcd and three brokers that work as a cluster, and stops them all on SIGINT', async () => {
    const dir = await tempDir('ms-dev-cluster-');
    const port = await freePortRange(30);
    const etcdPort = await freePortRange(2);
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
    const child = spawn(
      process.execPath,
      [
        '--import',
        tsx,
        main,
        '--json',
        'dev',
        'cluster',
        '--brokers',
        '3',
        '--port',
        String(port),
        '--etcd-port',
        String(etcdPort),
        '--dir',
        dir,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      err += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await until(() => out.includes('"ready"'), {
        what: 'the ready line',
        timeoutMs: 60_000,
        intervalMs: 100,
        abortIf: () => (child.exitCode !== null ? `exited with ${child.exitCode}` : null),
      }).catch((error: Error) => {
        throw new Error(`${error.message}; output: ${out} ${err}`);
      });
      const ready = JSON.parse(out.split('\n').find((line) => line.includes('"ready"'))!) as {
        etcd: { pid: number };
        brokers: Array<{ id: number; address: string; pid: number }>;
      };
      expect(ready.brokers.map((broker) => broker.id)).toEqual([1, 2, 3]);
      const client = await connect({ brokers: ready.brokers.map((broker) => broker.address) });
      try {
        await client.admin.createTopic({ name: 'tryout', partitions: 3, replicationFactor: 3 });
        const receipt = await client
          .producer({ acks: 'all' })
          .send({ topic: 'tryout', key: 'k', value: 'v' });
        expect(receipt.offset).toBe(0n);
      } finally {
        await client.close();
      }
      child.kill('SIGINT');
      expect(await exited).toBe(0);
      expect(out).toContain('"stopped"');
      for (const pid of [ready.etcd.pid, ...ready.brokers.map((broker) => broker.pid)])
        expect(alive(pid)).toBe(false);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 120_000);
});
