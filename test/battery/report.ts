// Human-readable output of the battery: per attack its checks (PASS/FAIL with the figure and the
// bound), the good clients' latencies before/during/after, and a closing table.

import type { AttackResult, PhaseLatencies } from './attack-runner.js';
import type { LatencySummary } from './checks.js';

const ms = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');
const row = (s: LatencySummary) => `p50 ${ms(s.p50)} / p99 ${ms(s.p99)} / max ${ms(s.max)} ms (${s.count})`;

function latencies(name: string, l: PhaseLatencies): string[] {
  return [
    `    ${name.padEnd(9)} before  ${row(l.before)}`,
    `    ${''.padEnd(9)} during  ${row(l.attack)}`,
    `    ${''.padEnd(9)} after   ${row(l.after)}`,
  ];
}

export function formatAttack(result: AttackResult, logTail: string[]): string {
  const f = result.figures;
  const lines = [
    '',
    `${result.pass ? 'PASS' : 'FAIL'}  ${result.attack}  (${result.table}; seed ${result.seed}; ${f.seconds} s)`,
    `    ${result.summary}`,
    `    rss: idle ${f.idleRssMiB} MiB, pre-attack ${f.baselineRssMiB} MiB, peak ${f.peakRssMiB} MiB, ceiling ${f.ceilingMiB} MiB; VmSize rise ${f.peakVirtualRiseMiB} MiB; peak fds ${f.peakFds}`,
    ...latencies('producer', f.producerLatencyMs),
    ...latencies('consumer', f.consumerLatencyMs),
  ];
  for (const c of result.checks) lines.push(`  ${c.pass ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}`);
  if (!result.pass) {
    lines.push(`    broker log: ${result.brokerLog}`);
    for (const line of logTail) lines.push(`      ${line.length > 300 ? `${line.slice(0, 300)}…` : line}`);
  }
  return lines.join('\n');
}

export function formatSummary(results: AttackResult[], header: string): string {
  const lines = ['', header, ''];
  lines.push(
    '| attack | result | peak RSS / ceiling (MiB) | producer p99 before → during (ms) | longest stall prod/cons (ms) | failed checks |',
  );
  lines.push('|---|---|---|---|---|---|');
  for (const r of results) {
    const f = r.figures;
    const failed = r.checks.filter((c) => !c.pass).map((c) => c.name);
    lines.push(
      `| ${r.attack} | ${r.pass ? 'pass' : 'FAIL'} | ${f.peakRssMiB} / ${f.ceilingMiB} | ${ms(f.producerLatencyMs.before.p99)} → ${ms(f.producerLatencyMs.attack.p99)} | ${ms(f.producerStallMs)} / ${ms(f.consumerStallMs)} | ${failed.join('; ') || '-'} |`,
    );
  }
  return lines.join('\n');
}
