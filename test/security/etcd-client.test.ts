// The etcd client's watch reconnect delay: bounded while the client is open, none once it is
// closed, so a process that closed its client exits at once even after its watch streams failed
// for a while (etcd down or restarting). A referenced reconnect timer of etcd3's default delay
// (up to 30 s) kept stopped brokers alive until their supervisor killed them.

import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { WatchReconnectBackoff } from '../../src/security/etcd-client.js';
import { etcdAvailable, startEtcd } from '../harness/etcd.js';
import { until } from '../harness/until.js';

describe('WatchReconnectBackoff', () => {
  it('doubles from 100 ms up to 1 s with jitter while the client is open', () => {
    let backoff = new WatchReconnectBackoff({ closed: false });
    const durations: number[] = [];
    for (let attempt = 0; attempt < 12; attempt++) {
      durations.push(backoff.duration);
      backoff = backoff.next();
    }
    expect(durations[0]).toBeGreaterThanOrEqual(50);
    expect(durations[0]).toBeLessThanOrEqual(100);
    expect(durations[2]).toBeGreaterThanOrEqual(200);
    expect(durations[2]).toBeLessThanOrEqual(400);
    for (const duration of durations.slice(4)) {
      expect(duration).toBeGreaterThanOrEqual(500);
      expect(duration).toBeLessThanOrEqual(1_000);
    }
  });

  it('is 0 for the first reconnect after the client is closed, then 1 s', () => {
    const client = { closed: false };
    let backoff = new WatchReconnectBackoff(client);
    for (let attempt = 0; attempt < 8; attempt++) backoff = backoff.next();
    expect(backoff.duration).toBeGreaterThanOrEqual(500);
    client.closed = true;
    expect(backoff.duration).toBe(0);
    expect(backoff.next().duration).toBe(1_000);
    expect(backoff.next().next().duration).toBe(1_000);
  });
});

describe.skipIf(!etcdAvailable())('etcdClient', () => {
  it('lets the process exit within a second of close, after its watch failed for 3 s', async () => {
    const etcd = await startEtcd();
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'test/security/helpers/etcd-watch-close.ts', etcd.endpoint, '3000'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    try {
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      const exited = new Promise<{ code: number | null; at: number }>((resolve) =>
        child.once('exit', (code) => resolve({ code, at: Date.now() })),
      );
      let stdout = '';
      let closedAt = 0;
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        if (closedAt === 0 && stdout.includes('closed')) closedAt = Date.now();
      });
      await until(() => stdout.includes('watching'), { what: 'the child watches', timeoutMs: 15_000 });
      await etcd.stop();
      const exit = await exited;
      expect(exit.code, stderr).toBe(0);
      expect(closedAt).toBeGreaterThan(0);
      // etcd3's own reconnect delay would have grown to seconds by now, and held the exit that long.
      expect(exit.at - closedAt).toBeLessThan(1_500);
    } finally {
      child.kill('SIGKILL');
      await etcd.stop();
    }
  }, 40_000);
});
