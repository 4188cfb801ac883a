// `memorystreamer dev cluster` as a process: etcd and three brokers come up, a replicated topic
// works through them, and SIGINT stops every process it started (by PID), with exit code 0.

import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
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
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
    // Ports found free may be taken by another test before etcd binds them: then etcd exits with
    // "address already in use" and the cluster is started again on other ports.
    let child!: ChildProcess;
    let out = '';
    let exited!: Promise<number | null>;
    for (let attempt = 1; ; attempt++) {
      const dir = await tempDir('ms-dev-cluster-');
      const port = await freePortRange(30);
      const etcdPort = await freePortRange(2);
      child = spawn(
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
      out = '';
      let err = '';
      const started = child;
      started.stdout?.on('data', (chunk: Buffer) => {
        out += chunk.toString();
      });
      started.stderr?.on('data', (chunk: Buffer) => {
        err += chunk.toString();
      });
      exited = new Promise<number | null>((resolve) => started.once('exit', (code) => resolve(code)));
      const failure = await until(() => out.includes('"ready"'), {
        what: 'the ready line',
        timeoutMs: 60_000,
        intervalMs: 100,
        abortIf: () => (started.exitCode !== null ? `exited with ${started.exitCode}` : null),
      }).then(
        () => null,
        (error: Error) => new Error(`${error.message}; output: ${out} ${err}`),
      );
      if (failure === null) break;
      const portTaken = await readFile(join(dir, 'etcd.log'), 'utf8').then(
        (log) => log.includes('address already in use'),
        () => false,
      );
      if (started.exitCode === null) started.kill('SIGKILL');
      if (!portTaken || attempt >= 3) throw failure;
    }
    try {
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
