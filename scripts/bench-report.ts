// Regenerates docs/benchmarks.md and docs/charts/*.svg from bench/results/*.json (written by the
// bench/ scripts). The rendering lives in scripts/bench-report-render.ts; this entry only writes the
// files, and removes charts no results file produces any more. Run: npx tsx scripts/bench-report.ts
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadResults, renderBenchReport } from './bench-report-render.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const results = loadResults(root);
const files = renderBenchReport(results);
const chartsDir = join(root, 'docs', 'charts');
mkdirSync(chartsDir, { recursive: true });
for (const file of files) writeFileSync(join(root, file.path), file.content);
const written = new Set(files.map((f) => f.path));
for (const name of readdirSync(chartsDir)) {
  if (name.endsWith('.svg') && !written.has(`docs/charts/${name}`)) rmSync(join(chartsDir, name));
}
console.log(
  `docs/benchmarks.md: ${results.length} benchmark(s); ${files.length - 1} chart(s) in docs/charts/`,
);
