import { readdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BenchReport } from '../../src/bench/report.js';
import { run } from '../../src/cli/main.js';
import { EXIT } from '../../src/cli/output.js';
import { Broker } from '../../src/embedded/broker.js';
import { tempDir, useTempDir } from '../harness/temp-dir.js';

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(argv, { env: {}, out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

async function bench(...argv: string[]): Promise<BenchReport> {
  const result = await cli('--json', ...argv);
  expect(result.err).toBe('');
  expect(result.code).toBe(EXIT.ok);
  return JSON.parse(result.out) as BenchReport;
}

/** What every complete run must show, whatever the broker. */
function expectConsistent(report: BenchReport): void {
  expect(report.produce.messages).toBeGreaterThan(0);
  expect(report.produce.msgPerSec).toBeGreaterThan(0);
  expect(report.produce.mbPerSec).toBeGreaterThan(0);
  expect(report.missing).toBe(0);
  expect(report.interrupted).toBe(false);
  const ack = report.latencyUs.publishToAck!;
  expect(ack.count).toBe(report.produce.messages);
  expect(ack.p50).toBeLessThanOrEqual(ack.p90);
  expect(ack.p90).toBeLessThanOrEqual(ack.p99);
  expect(ack.p99).toBeLessThanOrEqual(ack.p999);
  expect(ack.p999).toBeLessThanOrEqual(ack.max);
  expect(report.cpu.producers).toHaveLength(report.settings.producers);
  for (const thread of [...report.cpu.producers, ...report.cpu.consumers]) {
    expect(thread.eventLoopUtilization).toBeGreaterThan(0);
    expect(thread.eventLoopUtilization).toBeLessThanOrEqual(1);
    expect(thread.cores).not.toBeNull();
  }
  if (report.settings.consumers > 0) {
    const consume = report.consume!;
    expect(consume.messages).toBe(report.produce.messages);
    expect(consume.totalMessages).toBe(report.produce.totalMessages);
    const e2e = report.latencyUs.endToEnd!;
    expect(e2e.count).toBe(consume.messages);
    expect(e2e.min).toBeLessThanOrEqual(e2e.p50);
    expect(e2e.p50).toBeLessThanOrEqual(e2e.max);
    expect(report.cpu.consumers).toHaveLength(report.settings.consumers);
  }
}

describe('memorystreamer bench', () => {
  it('runs against an embedded broker for a duration and reports every documented field', async () => {
    const report = await bench(
      'bench',
      '--embedded',
      '--duration',
      '1',
      '--warmup',
      '0.2',
      '--producers',
      '2',
      '--consumers',
      '2',
      '--partitions',
      '2',
    );
    expect(Object.keys(report).sort()).toEqual(
      [
        'brokers',
        'consume',
        'cpu',
        'interrupted',
        'latencyUs',
        'missing',
        'mode',
        'produce',
        'settings',
        'topics',
      ].sort(),
    );
    expect(report.mode).toBe('embedded');
    expect(report.brokers[0]).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(report.settings).toMatchObject({ durationS: 1, warmupS: 0.2, producers: 2, consumers: 2 });
    expectConsistent(report);
    // Warmup messages are sent and consumed but not measured.
    expect(report.produce.totalMessages).toBeGreaterThan(report.produce.messages);
    expect(report.cpu.broker.method).toBe('process-minus-actors');
    expect(report.cpu.broker.cores).not.toBeNull();
    expect(report.cpu.broker.eventLoopUtilization).toBeGreaterThan(0);
  });

  it('runs against a spawned broker for an exact message count at a fixed rate, and cleans up', async () => {
    const parent = await tempDir('ms-bench-test-');
    const report = await bench(
      'bench',
      '--spawn',
      '--data-dir',
      parent,
      '--messages',
      '3000',
      '--rate',
      '6000',
      '--warmup',
      '0',
      '--producers',
      '2',
      '--consumers',
      '2',
      '--topics',
      '2',
      '--streams',
      '50',
      '--compression',
      'lz4',
      '--durability',
      'always',
    );
    expect(report.mode).toBe('spawn');
    expect(report.topics).toHaveLength(2);
    expect(report.produce.messages).toBe(3000);
    expect(report.produce.totalMessages).toBe(3000);
    expectConsistent(report);
    expect(report.cpu.broker.method).toBe('proc');
    expect(report.cpu.broker.cores).toBeGreaterThan(0);
    // The broker was stopped and its temporary data directory removed.
    expect(await readdir(parent)).toEqual([]);
  });

  describe('against an existing broker', () => {
    const scratch = useTempDir('ms-bench-broker-', 'all');
    let dataDir: string;
    let broker: Broker;
    let address: string;
    beforeAll(async () => {
      dataDir = scratch.path;
      broker = await Broker.start({ dataDir, port: 0 });
      address = `127.0.0.1:${broker.address!.port}`;
    });
    afterAll(async () => {
      await broker.stop();
    });

    it('measures produce only with --consumers 0, then deletes the topics it created', async () => {
      const report = await bench(
        '--broker',
        address,
        'bench',
        '--messages',
        '500',
        '--warmup',
        '0',
        '--consumers',
        '0',
        '--topics',
        '2',
        '--acks',
        '0',
      );
      expect(report.mode).toBe('external');
      expect(report.brokers).toEqual([address]);
      expect(report.consume).toBeNull();
      expect(report.latencyUs.endToEnd).toBeNull();
      expect(report.cpu.broker).toEqual({ cores: null, method: null, eventLoopUtilization: null });
      expect(report.produce.messages).toBe(500);
      expectConsistent(report);
      const client = broker.connect();
      try {
        expect((await client.admin.listTopics()).map((t) => t.name)).not.toContain(report.topics[0]);
      } finally {
        await client.close();
      }
    });

    it('prints a human summary with throughput, latency and CPU tables', async () => {
      const result = await cli('--broker', address, 'bench', '--messages', '300', '--warmup', '0');
      expect(result.code).toBe(EXIT.ok);
      expect(result.out).toMatch(/^memorystreamer bench: broker 127\.0\.0\.1:\d+, 1 topic × 1 partition/);
      expect(result.out).toMatch(/\nproduce\s+300\s+[\d,]+\s+[\d.]+\s+[\d.]+\n/);
      expect(result.out).toMatch(/\nconsume\s+300\s+/);
      expect(result.out).toMatch(/\npublish→ack\s+[\d.]+ [µm]?s\s+.*\s300\n/);
      expect(result.out).toMatch(/\nend-to-end\s+[\d.]+ [µm]?s/);
      expect(result.out).toMatch(/\nbroker\s+-\s+-\n/);
    });
  });

  it('exits 3 when the broker cannot be reached', async () => {
    const result = await cli('--json', '--broker', '127.0.0.1:1', 'bench', '--duration', '1');
    expect(result.code).toBe(EXIT.unavailable);
    expect(JSON.parse(result.out)).toMatchObject({ error: { name: 'BROKER_NOT_AVAILABLE' } });
  });
});
