// The web status page in a real browser (Debian's Chromium driven by playwright-core): an idle
// chart has distinct axis labels and shows both of its lines, it lists a topic the test creates,
// its rates move while a producer runs, a consumer group's lag shows, and a screenshot is saved to
// test-results/status-page.png. On a cluster member (two brokers on a real etcd) it lists the
// brokers and each partition's replication, and shows a stopped follower's partition
// under-replicated (test-results/status-page-cluster.png).
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type Browser as Chromium, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerNode } from '../../src/broker/broker-node.js';
import { connect } from '../../src/client/connect.js';
import { clusterPart } from '../../src/cluster/cluster-node.js';
import { MemoryStreamerError } from '../../src/common/errors.js';
import { Broker } from '../../src/embedded/broker.js';
import { type EtcdProcess, etcdAvailable, freePort, startEtcd } from '../harness/etcd.js';
import { useTempDir } from '../harness/temp-dir.js';
import { until } from '../harness/until.js';

// The little of the DOM that the browser-side functions below use: the test program is type-checked
// without the DOM library (it would leak browser globals into the Node code's types).
interface PageElement {
  textContent: string | null;
}
interface PageDocument {
  querySelector(selector: string): PageElement | null;
  getElementById(id: string): PageElement | null;
}
interface PageCanvas {
  width: number;
  height: number;
  getContext(kind: '2d'): {
    getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray };
  };
}

interface DrawnText {
  canvas: string;
  text: string;
  x: number;
}
interface ProbedWindow {
  drawnText: DrawnText[];
  CanvasRenderingContext2D: {
    prototype: {
      fillText(this: { canvas: { id: string } }, text: string, x: number, y: number): void;
    };
  };
}

/** Records every text the page draws on a canvas (the axis labels), before the page's script runs. */
async function probeCanvasText(page: Page): Promise<void> {
  await page.addInitScript(() => {
    const window = globalThis as unknown as ProbedWindow;
    window.drawnText = [];
    const prototype = window.CanvasRenderingContext2D.prototype;
    const fillText = prototype.fillText;
    prototype.fillText = function (text, x, y) {
      window.drawnText.push({ canvas: this.canvas.id, text: String(text), x });
      fillText.call(this, text, x, y);
    };
  });
}

/** The left and right axis labels of the next drawing of a chart, bottom to top. */
async function axisLabels(page: Page, canvas: string): Promise<{ left: string[]; right: string[] }> {
  await page.evaluate(() => {
    (globalThis as unknown as ProbedWindow).drawnText.length = 0;
  });
  // 'now' is the last label of a drawing: everything of this canvas before it is one drawing.
  await page.waitForFunction(
    (id) =>
      (globalThis as unknown as ProbedWindow).drawnText.some((t) => t.canvas === id && t.text === 'now'),
    canvas,
    { timeout: 10_000 },
  );
  const drawn = await page.evaluate(() => (globalThis as unknown as ProbedWindow).drawnText);
  const ofChart = drawn.filter((t) => t.canvas === canvas);
  const labels = ofChart
    .slice(
      0,
      ofChart.findIndex((t) => t.text === 'now'),
    )
    .filter((t) => t.text !== '-120 s');
  // Left labels are right-aligned before the plot (x = 50); right ones start after it.
  return {
    left: labels.filter((t) => t.x < 56).map((t) => t.text),
    right: labels.filter((t) => t.x >= 56).map((t) => t.text),
  };
}

/**
 * Counts the painted pixels of a canvas nearest to each of the page's two series colours (accent
 * #2563eb, accent2 #dc6803); antialiased edges keep their colour with a partial alpha.
 */
function seriesPixels(canvasId: string): { accent: number; accent2: number } {
  const doc = (globalThis as unknown as { document: PageDocument }).document;
  const canvas = doc.getElementById(canvasId) as unknown as PageCanvas;
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  const colours = [
    [37, 99, 235],
    [220, 104, 3],
  ] as const;
  const counts = [0, 0];
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3]! < 100) continue;
    const distance = colours.map(
      ([r, g, b]) => Math.abs(data[i]! - r) + Math.abs(data[i + 1]! - g) + Math.abs(data[i + 2]! - b),
    );
    const nearest = distance[0]! <= distance[1]! ? 0 : 1;
    if (distance[nearest]! < 100) counts[nearest]!++;
  }
  return { accent: counts[0]!, accent2: counts[1]! };
}

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// CI installs Chromium (.ci/apt-packages.txt), so there a missing browser fails the test; on a
// developer machine without it the test is skipped and says so.
const runnable = existsSync(CHROMIUM) || process.env.CI === 'true';
if (!runnable) console.warn(`status page browser test skipped: no Chromium at ${CHROMIUM}`);

describe.runIf(runnable)('web status page in Chromium', () => {
  const scratch = useTempDir('ms-status-page-', 'all');
  let dataDir: string;
  let broker: Broker;
  let browser: Chromium;
  let base: string;

  beforeAll(async () => {
    dataDir = scratch.path;
    broker = await Broker.start({ dataDir, admin: { port: 0 } });
    base = `http://127.0.0.1:${broker.admin!.address.port}/`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await broker?.stop();
  });

  it('labels idle axes with distinct ticks and keeps coinciding lines visible', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await probeCanvasText(page);
    await page.goto(base);
    // Idle: produce and fetch are both 0, so their lines lie on top of each other. Both colours
    // must show (the fetch line is dashed), and the legend says which is which. A line grows by a
    // point a second from the right edge: 15 pixels of each colour take a few seconds.
    let throughput = await page.evaluate(seriesPixels, 'throughput-chart');
    for (const deadline = Date.now() + 15_000; throughput.accent < 15 || throughput.accent2 < 15; ) {
      expect(Date.now(), JSON.stringify(throughput)).toBeLessThan(deadline);
      await new Promise((resolve) => setTimeout(resolve, 250));
      throughput = await page.evaluate(seriesPixels, 'throughput-chart');
    }
    const latency = await page.evaluate(seriesPixels, 'latency-chart');
    expect(latency).toEqual({ accent: 0, accent2: 0 }); // no produce yet: no latency points
    expect(await page.locator('#throughput-legend [data-series]').allTextContents()).toEqual([
      'produce msg/s (left axis)',
      'fetch MB/s (right axis)',
    ]);
    const swatchStyles = await page.locator('#throughput-legend .swatch').evaluateAll((swatches) =>
      swatches.map(
        (swatch) =>
          (
            globalThis as unknown as {
              getComputedStyle(e: unknown): { borderTopStyle: string };
            }
          ).getComputedStyle(swatch).borderTopStyle,
      ),
    );
    expect(swatchStyles).toEqual(['solid', 'dashed']);
    await mkdir('test-results', { recursive: true });
    await page.screenshot({ path: join('test-results', 'status-page-idle.png') });

    // Distinct round ticks: messages/s are counts (0, 1), MB/s and ms get halves.
    expect(await axisLabels(page, 'throughput-chart')).toEqual({
      left: ['0', '1'],
      right: ['0.0', '0.5', '1.0'],
    });
    expect(await axisLabels(page, 'latency-chart')).toEqual({
      left: ['0.0 ms', '0.5 ms', '1.0 ms'],
      right: [],
    });
    await page.close();
  }, 60_000);

  it('shows a new topic, moving rates while a producer runs, and group lag', async () => {
    const client = broker.connect();
    await client.admin.createTopic({ name: 'page-orders', partitions: 3 });
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await probeCanvasText(page);
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') pageErrors.push(message.text());
    });
    await page.goto(base);
    await expect(page.title()).resolves.toBe('MemoryStreamer status');

    const row = page.locator('#topics tbody tr[data-name="page-orders"]');
    await row.waitFor({ timeout: 10_000 });
    expect(await row.locator('td').nth(1).textContent()).toBe('3');

    // Produce steadily until the page shows a non-zero rate for the topic and overall.
    const producer = client.producer({ lingerMs: 1 });
    let producing = true;
    let sent = 0;
    const loop = (async () => {
      while (producing) {
        await producer.sendMany(
          Array.from({ length: 200 }, (_, i) => ({
            topic: 'page-orders',
            key: `k${i}`,
            value: 'x'.repeat(100),
          })),
        );
        sent += 200;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      await page.waitForFunction(
        () => {
          const doc = (globalThis as unknown as { document: PageDocument }).document;
          const cell = doc.querySelector('#topics tr[data-name="page-orders"] [data-testid="topic-rate"]');
          const rate = Number.parseFloat(cell?.textContent ?? '');
          const total = Number.parseFloat(doc.getElementById('produce-rate')?.textContent ?? '');
          return rate > 0 && total > 0;
        },
        undefined,
        { timeout: 15_000, polling: 200 },
      );
      const p99 = await page.locator('#produce-p99').textContent();
      expect(p99).toMatch(/^≤ [\d.]+ (µs|ms)$/);
      // Under load too, every axis label is distinct and they ascend.
      for (const chart of ['throughput-chart', 'latency-chart']) {
        const { left } = await axisLabels(page, chart);
        expect(left.length).toBeGreaterThan(1);
        expect(new Set(left).size).toBe(left.length);
        const values = left.map((label) => Number.parseFloat(label) * (label.endsWith('k') ? 1000 : 1));
        expect([...values].sort((a, b) => a - b)).toEqual(values);
      }
    } finally {
      producing = false;
      await loop;
    }
    expect(sent).toBeGreaterThan(0);

    // A consumer group that read part of the topic shows its lag.
    const consumer = client.consumer({
      topics: ['page-orders'],
      group: 'page-readers',
      sessionTimeoutMs: 10_000,
    });
    // next() rather than for-await: leaving a for-await loop closes the consumer (and the group).
    for (let read = 0; read < 100; ) if ((await consumer.next()) !== null) read++;
    await consumer.commit();
    await page.locator('#groups tbody tr[data-name="page-readers"]').waitFor({ timeout: 10_000 });
    const lag = Number.parseFloat(
      (await page.locator('#groups tr[data-name="page-readers"] [data-testid="group-lag"]').textContent()) ??
        '',
    );
    expect(lag).toBeGreaterThan(0);

    // Charts are drawn (the canvas has non-blank pixels).
    const inked = await page.evaluate(() => {
      const doc = (globalThis as unknown as { document: PageDocument }).document;
      const canvas = doc.getElementById('throughput-chart') as unknown as PageCanvas;
      const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      let painted = 0;
      for (let i = 3; i < data.length; i += 4) if (data[i]! > 0) painted++;
      return painted;
    });
    expect(inked).toBeGreaterThan(500);

    await mkdir('test-results', { recursive: true });
    await page.screenshot({ path: join('test-results', 'status-page.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
    await consumer.close();
    await client.close();
  }, 60_000);

  it('tells the viewer when the broker cannot be reached', async () => {
    const page = await browser.newPage();
    await page.goto(base);
    await page.locator('#topics tbody tr').first().waitFor();
    // A broker alone has no brokers or replication to show.
    expect(await page.locator('#cluster-brokers').isVisible()).toBe(false);
    expect(await page.locator('#cluster-replication').isVisible()).toBe(false);
    await page.route('**/api/status', (route) => route.fulfill({ status: 503, body: '{}' }));
    await page.locator('#problem.shown').waitFor({ timeout: 5000 });
    expect(await page.locator('#problem').textContent()).toContain('HTTP 503');
    await page.close();
  });
});

describe.runIf(runnable && etcdAvailable())('web status page of a cluster member in Chromium', () => {
  const scratch = useTempDir('ms-status-cluster-', 'all');
  let etcd: EtcdProcess;
  let browser: Chromium;
  const nodes: Array<BrokerNode | null> = [];

  beforeAll(async () => {
    etcd = await startEtcd();
    const cluster = `${etcd.endpoint.replace('http://', 'etcd://')}/status`;
    for (const brokerId of [1, 2]) {
      const port = await freePort();
      nodes.push(
        await BrokerNode.start(
          {
            dataDir: join(scratch.path, `b${brokerId}`),
            port,
            brokerId,
            admin: { port: 0 },
            memoryTrim: false,
            raiseFileLimit: false,
          },
          [clusterPart({ cluster, brokerId, advertise: `127.0.0.1:${port}`, leaseTtlSeconds: 2 })],
        ),
      );
    }
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu'],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    for (const node of nodes) await node?.stop({ deadlineMs: 500 });
    await etcd?.stop();
  });

  it('lists the brokers and the replication of each partition, and a stopped follower', async () => {
    const client = await connect({
      brokers: nodes.map((node) => `127.0.0.1:${node!.address!.port}`).join(','),
    });
    try {
      await until(async () => {
        try {
          return await client.admin.createTopic({ name: 'mirrored', partitions: 1, replicationFactor: 2 });
        } catch (error) {
          if (
            error instanceof MemoryStreamerError &&
            (error.retriable || error.codeName === 'NOT_CONTROLLER')
          )
            return null;
          throw error;
        }
      });
    } finally {
      await client.close();
    }
    const leaderIndex = await until(async () => {
      const index = nodes.findIndex((node) => {
        try {
          node!.core.replicaRoles!.checkRead('mirrored', 0);
          return true;
        } catch {
          return false;
        }
      });
      return index < 0 ? null : index;
    });
    const leader = nodes[leaderIndex]!;
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(`http://127.0.0.1:${leader.admin!.address.port}/`);
    const row = page.locator('#replication tbody tr[data-name="mirrored/0"]');
    await row.waitFor({ timeout: 10_000 });
    await expect
      .poll(() => row.locator('[data-testid=replication-state]').textContent(), { timeout: 10_000 })
      .toBe('ok');
    expect(await row.locator('[data-testid=leader]').textContent()).toBe(String(leaderIndex + 1));
    expect(await row.locator('[data-testid=isr]').textContent()).toMatch(/^\d, \d$/);
    expect(await page.locator('#brokers tbody tr').count()).toBe(2);
    expect(await page.locator('#brokers [data-testid=broker-live]').allTextContents()).toEqual([
      'yes',
      'yes',
    ]);
    expect(
      (await page.locator('#brokers [data-testid=broker-controller]').allTextContents()).filter(
        (text) => text === 'controller',
      ),
    ).toHaveLength(1);

    // The follower stops: its partition is under-replicated, the broker not live (it is still a replica).
    const followerIndex = 1 - leaderIndex;
    await nodes[followerIndex]!.stop({ deadlineMs: 500 });
    nodes[followerIndex] = null;
    await expect
      .poll(() => row.locator('[data-testid=replication-state]').textContent(), { timeout: 20_000 })
      .toBe('under-replicated');
    expect(await row.locator('[data-testid=isr]').textContent()).toBe(String(leaderIndex + 1));
    const follower = page.locator(`#brokers tbody tr[data-name="${followerIndex + 1}"]`);
    expect(await follower.locator('[data-testid=broker-live]').textContent()).toBe('no');
    expect(await page.locator('#replication-summary').textContent()).toContain('under-replicated');
    await mkdir('test-results', { recursive: true });
    await page.screenshot({ path: join('test-results', 'status-page-cluster.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
    await page.close();
  }, 60_000);
});
