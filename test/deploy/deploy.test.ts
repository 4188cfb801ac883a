// deploy/: the Prometheus alerting rules pass `promtool check rules` and their own unit tests, every
// metric the rules and the Grafana dashboard name is one the broker exports, and a real Prometheus
// server (Debian's package) scrapes a running broker and sees its metrics and loads the rules.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Broker } from '../../src/embedded/broker.js';
import { REPLICATION_METRIC_NAMES } from '../../src/metrics/replication-metrics.js';
import { tempDir, useTempDir } from '../harness/temp-dir.js';
import { until } from '../harness/until.js';

const run = promisify(execFile);
const RULES = resolve('deploy/prometheus/alerts.yml');
const RULE_TESTS = resolve('deploy/prometheus/alerts.test.yml');
const EXAMPLE_CONFIG = resolve('deploy/prometheus/prometheus.yml');
const DASHBOARD = resolve('deploy/grafana/memorystreamer-dashboard.json');

// CI installs Prometheus (.ci/apt-packages.txt), so there a missing binary fails; elsewhere the
// Prometheus parts are skipped with a message.
const havePrometheus = existsSync('/usr/bin/promtool') && existsSync('/usr/bin/prometheus');
const prometheusRunnable = havePrometheus || process.env.CI === 'true';
if (!prometheusRunnable)
  console.warn('deploy tests that need Prometheus skipped: apt-get install prometheus');

interface Dashboard {
  title: string;
  panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
}

/** Metric names in a PromQL text, with histogram series suffixes folded to the family name. */
function metricNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const match of text.matchAll(/\bmemorystreamer_[a-z0-9_]+/g))
    names.add(match[0].replace(/_(bucket|count|sum)$/, ''));
  return names;
}

async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => done(port));
    });
  });
}

let dataDir: string;
let broker: Broker;
let exported: Set<string>;

const scratch = useTempDir('ms-deploy-', 'all');
beforeAll(async () => {
  dataDir = scratch.path;
  broker = await Broker.start({ dataDir, port: 0, admin: { port: 0 } });
  const client = broker.connect();
  await client.admin.createTopic({ name: 'scraped', config: { durability: 'always' } });
  await client
    .producer()
    .sendMany(Array.from({ length: 42 }, (_, i) => ({ topic: 'scraped', value: `m${i}` })));
  const consumer = client.consumer({ topics: ['scraped'], group: 'scrapers', sessionTimeoutMs: 10_000 });
  for (let read = 0; read < 10; ) if ((await consumer.next()) !== null) read++;
  await consumer.commit();
  await consumer.close();
  await client.close();
  const text = await (await fetch(`http://127.0.0.1:${broker.admin!.address.port}/metrics`)).text();
  exported = new Set([...text.matchAll(/^# TYPE (memorystreamer_[a-z0-9_]+) /gm)].map((m) => m[1]!));
  // A cluster member adds its replication series (test/metrics/replication-metrics.test.ts checks
  // each is registered; test/cluster/cluster-node.test.ts reads them from three brokers).
  for (const name of REPLICATION_METRIC_NAMES) exported.add(name);
});

afterAll(async () => {
  await broker?.stop();
});

describe('deploy/ artefacts', () => {
  it('the Grafana dashboard is valid JSON whose every query names exported metrics', () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
    expect(dashboard.title).toBe('MemoryStreamer');
    expect(dashboard.panels.length).toBeGreaterThanOrEqual(10);
    const used = new Set<string>();
    for (const panel of dashboard.panels) {
      expect(panel.targets.length, panel.title).toBeGreaterThan(0);
      for (const target of panel.targets) for (const name of metricNames(target.expr)) used.add(name);
    }
    const missing = [...used].filter((name) => !exported.has(name));
    expect(missing).toEqual([]);
    // The areas the operations guide promises are all on the dashboard.
    for (const name of [
      'memorystreamer_produce_messages_total',
      'memorystreamer_request_duration_seconds',
      'memorystreamer_request_errors_total',
      'memorystreamer_connections',
      'memorystreamer_memory_budget_used_bytes',
      'memorystreamer_throttle_events_total',
      'memorystreamer_storage_fsync_duration_seconds',
      'memorystreamer_group_lag_messages',
      'memorystreamer_partition_size_bytes',
      'memorystreamer_replication_under_replicated_partitions',
      'memorystreamer_replication_offline_partitions',
      'memorystreamer_replication_isr_shrinks_total',
      'memorystreamer_replication_follower_lag_messages',
      'memorystreamer_replication_follower_lag_seconds',
      'memorystreamer_controller_active',
      'memorystreamer_controller_leader_elections_total',
    ])
      expect(used.has(name), name).toBe(true);
  });

  it('the alerting rules name only exported metrics', () => {
    const missing = [...metricNames(readFileSync(RULES, 'utf8'))].filter((name) => !exported.has(name));
    expect(missing).toEqual([]);
  });

  it.runIf(prometheusRunnable)(
    'promtool accepts the rules and the example configuration, and the rule tests pass',
    async () => {
      const check = await run('promtool', ['check', 'rules', RULES]);
      expect(check.stdout).toMatch(/SUCCESS: 13 rules found/);
      const tests = await run('promtool', ['test', 'rules', RULE_TESTS], {
        cwd: resolve('deploy/prometheus'),
      });
      expect(tests.stdout).toMatch(/SUCCESS/);
      const config = await run('promtool', ['check', 'config', EXAMPLE_CONFIG]);
      expect(config.stdout).toMatch(/is valid prometheus config file/);
    },
  );

  it.runIf(prometheusRunnable)(
    'a real Prometheus scrapes the broker, sees its metrics and loads the rules',
    async () => {
      const dir = await tempDir('ms-prometheus-');
      const port = await freePort();
      const config = join(dir, 'prometheus.yml');
      await writeFile(
        config,
        [
          'global:',
          '  scrape_interval: 1s',
          '  evaluation_interval: 1s',
          'rule_files:',
          `  - ${JSON.stringify(RULES)}`,
          'scrape_configs:',
          '  - job_name: memorystreamer',
          '    static_configs:',
          `      - targets: ['127.0.0.1:${broker.admin!.address.port}']`,
          '',
        ].join('\n'),
      );
      let output = '';
      const prometheus: ChildProcess = spawn(
        '/usr/bin/prometheus',
        [
          `--config.file=${config}`,
          `--storage.tsdb.path=${join(dir, 'tsdb')}`,
          `--web.listen-address=127.0.0.1:${port}`,
          '--log.level=warn',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      prometheus.stdout!.on('data', (d: Buffer) => (output += d.toString()));
      prometheus.stderr!.on('data', (d: Buffer) => (output += d.toString()));
      const exited = new Promise<void>((done) => prometheus.once('exit', () => done()));
      const api = async <T>(path: string): Promise<T> => {
        const response = await fetch(`http://127.0.0.1:${port}${path}`);
        return ((await response.json()) as { data: T }).data;
      };
      const query = async (promql: string) =>
        (
          await api<{ result: Array<{ value: [number, string] }> }>(
            `/api/v1/query?query=${encodeURIComponent(promql)}`,
          )
        ).result;
      try {
        await until(
          async () => (await query('memorystreamer_produce_messages_total'))[0]?.value[1] === '42',
          {
            what: 'prometheus sees the produced messages',
            timeoutMs: 45_000,
            intervalMs: 250,
            abortIf: () =>
              prometheus.exitCode !== null ? `prometheus exited (${prometheus.exitCode})` : null,
          },
        ).catch((error: Error) => {
          throw new Error(`${error.message}; its output: ${output}`);
        });
        expect((await query('up{job="memorystreamer"}'))[0]?.value[1]).toBe('1');
        expect((await query('memorystreamer_group_lag_messages{group="scrapers"}'))[0]?.value[1]).toBe('32');
        expect(
          Number(
            (await query('memorystreamer_storage_fsync_duration_seconds_count{cause="append"}'))[0]?.value[1],
          ),
        ).toBeGreaterThan(0);
        // Every rule is evaluated against live data without error ('ok'; 'unknown' until its first run).
        type RuleGroups = { groups: Array<{ name: string; rules: Array<{ health: string; name: string }> }> };
        const unhealthy = (groups: RuleGroups) =>
          groups.groups.flatMap((g) => g.rules).filter((r) => r.health !== 'ok');
        let unhealthyRules: unknown[] = [];
        const rules = await until(
          async () => {
            const groups = await api<RuleGroups>('/api/v1/rules');
            unhealthyRules = unhealthy(groups);
            return unhealthyRules.length === 0 ? groups : null;
          },
          { what: 'every rule healthy', timeoutMs: 45_000, intervalMs: 250 },
        ).catch((error: Error) => {
          throw new Error(`${error.message}; not healthy: ${JSON.stringify(unhealthyRules)}`);
        });
        expect(rules.groups.map((g) => g.name).sort()).toEqual([
          'memorystreamer.availability',
          'memorystreamer.capacity',
          'memorystreamer.latency',
          'memorystreamer.replication',
        ]);
        expect(rules.groups.flatMap((g) => g.rules)).toHaveLength(13);
      } finally {
        prometheus.kill('SIGTERM');
        await exited;
      }
    },
    90_000,
  );
});
