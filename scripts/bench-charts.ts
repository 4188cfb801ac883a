// Small SVG chart builders for docs/benchmarks.md (no chart library): plain SVG strings with an
// explicit white background so they read the same in GitHub's light and dark themes. Pure functions:
// the same input always gives the same bytes (the docs test compares them with the committed files).

export interface Series {
  name: string;
  color: string;
}

export interface BarGroup {
  label: string;
  /** Second, smaller line under the label (e.g. the version). */
  sublabel?: string;
  /** One value per series, in series order; null = not measured. */
  values: (number | null)[];
  /** Drawn lighter with an italic label: a bare limit, not a system. */
  reference?: boolean;
}

export interface ReferenceLine {
  label: string;
  value: number;
}

export interface BarChartSpec {
  title: string;
  subtitle: string;
  axisLabel: string;
  scale: 'linear' | 'log';
  series: Series[];
  groups: BarGroup[];
  references: ReferenceLine[];
  format: (value: number) => string;
}

export interface LinePanel {
  title: string;
  axisLabel: string;
  format: (value: number) => string;
  lines: { name: string; color: string; points: { x: number; y: number }[] }[];
}

export interface LineChartSpec {
  title: string;
  subtitle: string;
  xLabel: string;
  /** x positions: 'log' when the parameter grows geometrically, 'category' for non-numeric values. */
  xScale: 'linear' | 'log' | 'category';
  /** Labels of the x values (index = x for 'category'). */
  xTicks: { x: number; label: string }[];
  panels: LinePanel[];
}

const FONT = 'font-family="-apple-system, \'Segoe UI\', Helvetica, Arial, sans-serif"';
const TEXT = '#1f2328';
const MUTED = '#59636e';
const GRID = '#d1d9e0';
const BACKGROUND = '#ffffff';

export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Rough text width in px for the layout (no font metrics available). */
function textWidth(text: string, size: number, bold = false): number {
  return Math.ceil(text.length * size * (bold ? 0.64 : 0.58));
}

function round(n: number): string {
  return String(Math.round(n * 10) / 10);
}

function text(
  x: number,
  y: number,
  content: string,
  attrs: { size?: number; anchor?: 'start' | 'middle' | 'end'; fill?: string; extra?: string } = {},
): string {
  const anchor = attrs.anchor && attrs.anchor !== 'start' ? ` text-anchor="${attrs.anchor}"` : '';
  const extra = attrs.extra ? ` ${attrs.extra}` : '';
  return `<text x="${round(x)}" y="${round(y)}" font-size="${attrs.size ?? 12}" fill="${attrs.fill ?? TEXT}"${anchor}${extra}>${escapeXml(content)}</text>`;
}

function svgDocument(width: number, height: number, title: string, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" ${FONT}>`,
    `<title>${escapeXml(title)}</title>`,
    `<rect x="0.5" y="0.5" width="${width - 1}" height="${height - 1}" rx="6" fill="${BACKGROUND}" stroke="${GRID}"/>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

interface Axis {
  position: (value: number) => number;
  ticks: number[];
  min: number;
}

/** 0 .. a round maximum with about five ticks. */
function linearAxis(max: number, from: number, to: number): Axis {
  const rough = max > 0 ? max / 5 : 1;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= rough) ?? 10 * magnitude;
  const top = Math.ceil(max / step) * step || step;
  const ticks: number[] = [];
  for (let t = 0; t <= top + step / 2; t += step) ticks.push(Number(t.toPrecision(12)));
  return { position: (v) => from + ((to - from) * v) / top, ticks, min: 0 };
}

/** Whole decades around [min, max]. */
function logAxis(min: number, max: number, from: number, to: number): Axis {
  const lo = Math.floor(Math.log10(Math.max(min, 1e-9)));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(max, 1e-9))));
  const ticks: number[] = [];
  for (let d = lo; d <= hi; d++) ticks.push(10 ** d);
  return {
    position: (v) => from + ((to - from) * (Math.log10(Math.max(v, 10 ** lo)) - lo)) / (hi - lo),
    ticks,
    min: 10 ** lo,
  };
}

function legend(series: Series[], x: number, y: number): string[] {
  const out: string[] = [];
  let at = x;
  for (const s of series) {
    out.push(`<rect x="${round(at)}" y="${round(y - 10)}" width="12" height="12" rx="2" fill="${s.color}"/>`);
    out.push(text(at + 17, y, s.name, { size: 12 }));
    at += 17 + textWidth(s.name, 12) + 18;
  }
  return out;
}

/** Grouped horizontal bars, one group per system, with dashed vertical reference lines. */
export function horizontalBarChart(spec: BarChartSpec): string {
  const width = 880;
  const labelWidth = Math.min(
    280,
    Math.max(
      ...spec.groups.map((g) => Math.max(textWidth(g.label, 13, true), textWidth(g.sublabel ?? '', 11))),
    ) + 28,
  );
  const valueRoom = 78;
  const plotLeft = labelWidth;
  const plotRight = width - valueRoom;
  const barHeight = 15;
  const barGap = 3;
  const groupGap = 18;
  const top = 78 + (spec.references.length > 0 ? 14 * spec.references.length : 0);
  const groupHeight = spec.series.length * (barHeight + barGap) - barGap;
  const plotBottom = top + spec.groups.length * (groupHeight + groupGap) - groupGap + 10;
  const height = plotBottom + 48;

  const values = [
    ...spec.groups.flatMap((g) => g.values.filter((v): v is number => v !== null && v > 0)),
    ...spec.references.map((r) => r.value),
  ];
  const axis =
    spec.scale === 'log'
      ? logAxis(Math.min(...values), Math.max(...values), plotLeft, plotRight)
      : linearAxis(Math.max(...values), plotLeft, plotRight);

  const body: string[] = [
    text(16, 26, spec.title, { size: 16, extra: 'font-weight="600"' }),
    text(16, 45, spec.subtitle, { size: 12, fill: MUTED }),
    ...legend(spec.series, plotLeft, 67),
  ];
  // Grid and tick labels.
  for (const tick of axis.ticks) {
    const x = axis.position(tick);
    body.push(
      `<line x1="${round(x)}" y1="${top - 6}" x2="${round(x)}" y2="${plotBottom}" stroke="${GRID}" stroke-width="1"/>`,
    );
    body.push(text(x, plotBottom + 16, spec.format(tick), { size: 11, anchor: 'middle', fill: MUTED }));
  }
  body.push(
    `<line x1="${plotLeft}" y1="${top - 6}" x2="${plotLeft}" y2="${plotBottom}" stroke="${MUTED}" stroke-width="1"/>`,
  );
  body.push(
    text((plotLeft + plotRight) / 2, plotBottom + 36, spec.axisLabel, {
      size: 12,
      anchor: 'middle',
      fill: MUTED,
    }),
  );
  // Bars.
  spec.groups.forEach((group, gi) => {
    const y0 = top + gi * (groupHeight + groupGap);
    const mid = y0 + groupHeight / 2;
    const style = group.reference ? ' font-style="italic"' : '';
    body.push(
      text(plotLeft - 10, group.sublabel ? mid - 2 : mid + 4, group.label, {
        size: 13,
        anchor: 'end',
        fill: group.reference ? MUTED : TEXT,
        extra: `font-weight="${group.reference ? 400 : 600}"${style}`,
      }),
    );
    if (group.sublabel)
      body.push(text(plotLeft - 10, mid + 12, group.sublabel, { size: 11, anchor: 'end', fill: MUTED }));
    spec.series.forEach((series, si) => {
      const y = y0 + si * (barHeight + barGap);
      const value = group.values[si] ?? null;
      if (value === null) {
        body.push(
          text(plotLeft + 6, y + barHeight - 3, `${series.name}: not measured`, { size: 11, fill: MUTED }),
        );
        return;
      }
      const end = Math.max(plotLeft + 1, axis.position(value));
      const opacity = group.reference ? ' fill-opacity="0.55"' : '';
      body.push(
        `<rect x="${plotLeft}" y="${round(y)}" width="${round(end - plotLeft)}" height="${barHeight}" fill="${series.color}"${opacity}><title>${escapeXml(`${group.label} ${series.name}: ${spec.format(value)}`)}</title></rect>`,
      );
      body.push(text(end + 5, y + barHeight - 3, spec.format(value), { size: 11 }));
    });
  });
  // Reference lines over the bars, labelled above the plot.
  spec.references.forEach((ref, i) => {
    const x = axis.position(ref.value);
    const labelY = 78 + 14 * i - 4;
    body.push(
      `<line x1="${round(x)}" y1="${labelY + 4}" x2="${round(x)}" y2="${plotBottom}" stroke="#cf222e" stroke-width="1.5" stroke-dasharray="5 4"/>`,
    );
    const label = `${ref.label}: ${spec.format(ref.value)}`;
    const anchor = x + textWidth(label, 11) > width - 8 ? 'end' : 'start';
    body.push(
      text(anchor === 'end' ? x - 4 : x + 4, labelY + 6, label, { size: 11, anchor, fill: '#cf222e' }),
    );
  });
  return svgDocument(width, height, spec.title, body);
}

/** One or more side-by-side line panels sharing the x parameter. */
export function lineChart(spec: LineChartSpec): string {
  const width = 880;
  const panelGap = 100;
  const panelCount = Math.max(1, spec.panels.length);
  const left = 78;
  const panelWidth = (width - left - 24 - (panelCount - 1) * panelGap) / panelCount;
  const seriesNames = [...new Set(spec.panels.flatMap((p) => p.lines.map((l) => l.name)))];
  const showLegend = seriesNames.length > 1;
  const top = showLegend ? 116 : 100;
  const plotHeight = 240;
  const bottom = top + plotHeight;
  const height = bottom + 52;
  const body: string[] = [
    text(16, 26, spec.title, { size: 16, extra: 'font-weight="600"' }),
    text(16, 45, spec.subtitle, { size: 12, fill: MUTED }),
  ];
  if (showLegend) {
    const colors = new Map(spec.panels.flatMap((p) => p.lines.map((l) => [l.name, l.color] as const)));
    body.push(
      ...legend(
        seriesNames.map((name) => ({ name, color: colors.get(name) ?? TEXT })),
        left,
        66,
      ),
    );
  }
  const xs = spec.xTicks.map((t) => t.x);
  const xMin = Math.min(...xs);
  const xMax = Math.max(...xs);
  spec.panels.forEach((panel, pi) => {
    const from = left + pi * (panelWidth + panelGap);
    const to = from + panelWidth;
    const inset = 14;
    const xPos = (x: number): number => {
      if (xMax === xMin) return (from + to) / 2;
      const t =
        spec.xScale === 'log'
          ? (Math.log(x) - Math.log(xMin)) / (Math.log(xMax) - Math.log(xMin))
          : (x - xMin) / (xMax - xMin);
      return from + inset + t * (panelWidth - 2 * inset);
    };
    const ys = panel.lines.flatMap((l) => l.points.map((p) => p.y));
    const yAxis = linearAxis(Math.max(...ys, 0), bottom, top);
    body.push(text(from, top - 24, panel.title, { size: 13, extra: 'font-weight="600"' }));
    for (const tick of yAxis.ticks) {
      const y = yAxis.position(tick);
      body.push(
        `<line x1="${round(from)}" y1="${round(y)}" x2="${round(to)}" y2="${round(y)}" stroke="${GRID}"/>`,
      );
      body.push(text(from - 6, y + 4, panel.format(tick), { size: 11, anchor: 'end', fill: MUTED }));
    }
    body.push(
      `<line x1="${round(from)}" y1="${bottom}" x2="${round(to)}" y2="${bottom}" stroke="${MUTED}"/>`,
    );
    for (const tick of spec.xTicks) {
      const x = xPos(tick.x);
      body.push(
        `<line x1="${round(x)}" y1="${bottom}" x2="${round(x)}" y2="${bottom + 4}" stroke="${MUTED}"/>`,
      );
      body.push(text(x, bottom + 17, tick.label, { size: 11, anchor: 'middle', fill: MUTED }));
    }
    body.push(text((from + to) / 2, bottom + 38, spec.xLabel, { size: 12, anchor: 'middle', fill: MUTED }));
    body.push(
      text(from - 60, (top + bottom) / 2, panel.axisLabel, {
        size: 12,
        anchor: 'middle',
        fill: MUTED,
        extra: `transform="rotate(-90 ${round(from - 60)} ${round((top + bottom) / 2)})"`,
      }),
    );
    for (const line of panel.lines) {
      const points = line.points.map((p) => `${round(xPos(p.x))},${round(yAxis.position(p.y))}`);
      if (points.length > 1) {
        body.push(
          `<polyline points="${points.join(' ')}" fill="none" stroke="${line.color}" stroke-width="2" stroke-linejoin="round"/>`,
        );
      }
      for (const p of line.points) {
        const x = xPos(p.x);
        const y = yAxis.position(p.y);
        body.push(
          `<circle cx="${round(x)}" cy="${round(y)}" r="3.5" fill="${line.color}"><title>${escapeXml(`${line.name}: ${panel.format(p.y)}`)}</title></circle>`,
        );
        if (!showLegend) body.push(text(x, y - 8, panel.format(p.y), { size: 10, anchor: 'middle' }));
      }
    }
  });
  return svgDocument(width, height, spec.title, body);
}

/** 1,584,381 → "1.58 M"; 23,679 → "23.7 k". */
export function formatCount(value: number): string {
  if (value === 0) return '0';
  const units: [number, string][] = [
    [1e9, ' G'],
    [1e6, ' M'],
    [1e3, ' k'],
  ];
  for (const [size, suffix] of units) {
    if (Math.abs(value) >= size) return `${Number((value / size).toPrecision(3))}${suffix}`;
  }
  return String(Number(value.toPrecision(3)));
}

/** Microseconds → "89 µs", "5.05 ms", "1.2 s". */
export function formatMicros(value: number): string {
  if (value === 0) return '0';
  if (value >= 1e6) return `${Number((value / 1e6).toPrecision(3))} s`;
  if (value >= 1e3) return `${Number((value / 1e3).toPrecision(3))} ms`;
  return `${Number(value.toPrecision(3))} µs`;
}
