import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { BenchResult } from '../../bench/lib/report.js';
import { escapeXml } from '../../scripts/bench-charts.js';
import { loadResults, renderBenchReport, scalingChart } from '../../scripts/bench-report-render.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const results = loadResults(root);
const files = renderBenchReport(results);
const markdown = files.find((f) => f.path === 'docs/benchmarks.md')!.content;
const svgs = files.filter((f) => f.path.endsWith('.svg'));

/** Enough XML checking for our own output: one root, balanced tags, no stray '<' or '&' in text. */
function xmlProblems(svg: string): string[] {
  const problems: string[] = [];
  const stack: string[] = [];
  let roots = 0;
  const tag = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/y;
  let i = 0;
  while (i < svg.length) {
    const lt = svg.indexOf('<', i);
    const textPart = svg.slice(i, lt < 0 ? svg.length : lt);
    if (/&(?!(amp|lt|gt|quot|apos|#\d+);)/.test(textPart)) problems.push(`bare & near ${i}`);
    if (stack.length === 0 && textPart.trim() !== '') problems.push(`text outside the root near ${i}`);
    if (lt < 0) break;
    tag.lastIndex = lt;
    const m = tag.exec(svg);
    if (!m) {
      problems.push(`malformed tag at ${lt}: ${svg.slice(lt, lt + 40)}`);
      break;
    }
    const [, close, name, , selfClose] = m;
    if (close) {
      const open = stack.pop();
      if (open !== name) problems.push(`</${name}> closes <${open}>`);
    } else if (!selfClose) {
      if (stack.length === 0) roots++;
      stack.push(name!);
    } else if (stack.length === 0) roots++;
    i = tag.lastIndex;
  }
  if (stack.length > 0) problems.push(`unclosed: ${stack.join(' > ')}`);
  if (roots !== 1) problems.push(`${roots} root elements`);
  return problems;
}

describe('docs/benchmarks.md', () => {
  it('has a section with the command of every results file', () => {
    expect(results.length).toBeGreaterThan(0);
    for (const result of results) {
      const at = markdown.indexOf(`## ${result.title}\n`);
      expect(at, result.benchmark).toBeGreaterThanOrEqual(0);
      expect(markdown.slice(at)).toContain(`- command: \`${result.command}\``);
    }
  });

  it('embeds every chart it generates, and every embedded chart is generated', () => {
    const embedded = [...markdown.matchAll(/!\[[^\]]*\]\((charts\/[^)]+)\)/g)].map((m) => `docs/${m[1]}`);
    expect(embedded.sort()).toEqual(svgs.map((f) => f.path).sort());
    expect(embedded).toContain('docs/charts/compare-throughput.svg');
    expect(embedded).toContain('docs/charts/compare-latency.svg');
  });

  it('summary ratios agree with the ratios the comparison tool recorded', () => {
    const compare = results.find((r) => r.benchmark === 'compare')!;
    const summary = markdown.slice(
      markdown.indexOf('## Summary'),
      markdown.indexOf('\n## ', markdown.indexOf('## Summary') + 1),
    );
    for (const row of compare.rows) {
      const name = String(row.system);
      if (name === 'MemoryStreamer') continue;
      const line = summary.split('\n').find((l) => l.startsWith(`| ${name}`) || l.startsWith(`| *${name}*`));
      expect(line, name).toBeDefined();
      const cells = line!.split('|').map((c) => c.trim());
      for (const [column, key] of [
        [2, 'MS÷ produce'],
        [3, 'MS÷ replay'],
        [4, 'MS÷ e2e p99'],
        [5, 'MS÷ ack p99'],
      ] as const) {
        const recorded = row[key];
        if (typeof recorded !== 'number') continue;
        const shown = Number(cells[column]!.replace(/[×,]/g, ''));
        expect(Math.abs(shown - recorded) / recorded, `${name} ${key}`).toBeLessThan(0.01);
      }
      expect(cells[6], `${name} load`).toBe(String(row['load 1m']));
    }
  });

  it('the XML check rejects broken markup', () => {
    expect(xmlProblems('<svg><g></svg>')).not.toEqual([]);
    expect(xmlProblems('<svg><text>a & b</text></svg>')).not.toEqual([]);
    expect(xmlProblems('<svg><text>a < b</text></svg>')).not.toEqual([]);
    expect(xmlProblems('<svg/><svg/>')).not.toEqual([]);
    expect(xmlProblems('<svg x="1"><rect y="2"/><text>a &amp; b</text></svg>\n')).toEqual([]);
  });

  it('charts are well-formed SVG naming every system', () => {
    const compare = results.find((r) => r.benchmark === 'compare')!;
    const systems = compare.rows.map((r) => String(r.system)).filter((s) => !s.startsWith('bare'));
    for (const file of svgs) {
      expect(xmlProblems(file.content), file.path).toEqual([]);
      expect(file.content.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'), file.path).toBe(true);
      expect(file.content, file.path).toMatch(/<rect [^>]*fill="#ffffff"/);
      if (file.path.includes('compare-')) {
        for (const system of systems)
          expect(file.content, `${file.path}: ${system}`).toContain(escapeXml(system));
      }
    }
    expect(svgs.find((f) => f.path.endsWith('compare-throughput.svg'))!.content).toContain(
      'bare TCP echo limit',
    );
    expect(svgs.find((f) => f.path.endsWith('compare-latency.svg'))!.content).toContain('ping-pong');
  });

  it('the committed page and charts equal what scripts/bench-report.ts generates (run it to update)', () => {
    for (const file of files)
      expect(readFileSync(`${root}/${file.path}`, 'utf8'), file.path).toBe(file.content);
    const committed = readdirSync(`${root}/docs/charts`).filter((f) => f.endsWith('.svg'));
    expect(committed.map((f) => `docs/charts/${f}`).sort()).toEqual(svgs.map((f) => f.path).sort());
  });
});

describe('scaling charts', () => {
  const base: BenchResult = {
    benchmark: 'scaling-partitions',
    title: 'Scaling: <partitions> & throughput',
    command: 'npx tsx bench/scaling.ts --dimension partitions',
    date: '2026-11-23T12:00:00.000Z',
    machine: { cpu: 'x', cores: 2, memoryGiB: 4, kernel: 'k', node: 'v20', disk: 'd' },
    settings: { messages: 1000 },
    rows: [1, 2, 4, 8, 16, 64].map((p, i) => ({
      partitions: p,
      'produce msg/s': 1_000_000 + i * 100_000,
      'e2e p99 µs': 500 + i * 250,
      status: 'ok',
    })),
  };

  it('draws one chart per scaling results file and embeds it', () => {
    const out = renderBenchReport([
      // The committed scaling results would shadow these synthetic ones of the same names.
      ...results.filter((r) => !r.benchmark.startsWith('scaling-')),
      base,
      { ...base, benchmark: 'scaling-producers', title: 'P' },
    ]);
    const paths = out.map((f) => f.path);
    expect(paths).toContain('docs/charts/scaling-partitions.svg');
    expect(paths).toContain('docs/charts/scaling-producers.svg');
    const page = out[0]!.content;
    expect(page).toContain('](charts/scaling-partitions.svg)');
    const svg = out.find((f) => f.path === 'docs/charts/scaling-partitions.svg')!.content;
    expect(xmlProblems(svg)).toEqual([]);
    expect(svg).toContain('&lt;partitions&gt; &amp; throughput');
    expect(svg).toContain('<polyline');
  });

  it('tolerates rows without the metrics, with string parameters, per-system lines and gaps', () => {
    expect(scalingChart({ ...base, rows: [] })).toBeUndefined();
    expect(scalingChart({ ...base, rows: [{ partitions: 1, status: 'failed' }] })).toBeUndefined();
    const categorical = scalingChart({
      ...base,
      rows: [
        { 'message size': '100 B', 'produce msg/s': 1000, 'e2e p99 µs': null },
        { 'message size': '1 KiB', 'produce msg/s': null, 'e2e p99 µs': 900 },
      ],
    });
    expect(categorical && xmlProblems(categorical)).toEqual([]);
    const perSystem = scalingChart({
      ...base,
      rows: [
        { system: 'MemoryStreamer', consumers: 1, 'produce msg/s': 10, 'e2e p99 µs': 5 },
        { system: 'MemoryStreamer', consumers: 4, 'produce msg/s': 20, 'e2e p99 µs': 6 },
        { system: 'Redis Streams', consumers: 1, 'produce msg/s': 8, 'e2e p99 µs': 7 },
      ],
    });
    expect(perSystem).toContain('Redis Streams');
    expect(perSystem && xmlProblems(perSystem)).toEqual([]);
  });
});
