// The broker's web status page (GET / on the admin port): topics and partitions with sizes and
// rates, consumer groups with lag, connections and memory, live charts of throughput and
// produce latency, and on a cluster member the brokers and every partition's replication health. It polls GET /api/status once a second and derives every rate and interval
// percentile in the browser from two successive snapshots, so viewers cost the broker one small
// JSON document per second each and no state. No external resources: it works offline, and the
// Content-Security-Policy below allows only this origin's script.
//
// The page and its script are plain strings so that they ship inside `dist/` with no build step;
// test/integration/status-page.test.ts loads them in a real Chromium.

export const STATUS_PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'";

export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>MemoryStreamer status</title>
<link rel="icon" href="data:,">
<style>
  :root { color-scheme: light dark; --fg: #1d2330; --muted: #667085; --line: #d0d5dd; --bg: #fff; --card: #f7f8fa; --accent: #2563eb; --accent2: #dc6803; --bad: #b42318; }
  @media (prefers-color-scheme: dark) { :root { --fg: #e4e7ec; --muted: #98a2b3; --line: #344054; --bg: #0c111d; --card: #161b26; } }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
  header { display: flex; flex-wrap: wrap; gap: 4px 24px; align-items: baseline; padding: 14px 24px; border-bottom: 1px solid var(--line); }
  header h1 { font-size: 18px; margin: 0; }
  header span { color: var(--muted); }
  main { padding: 16px 24px; display: grid; gap: 20px; }
  .cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(160px, 1fr)); gap: 12px; }
  .card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
  .card .label { color: var(--muted); font-size: 12px; }
  .card .value { font-size: 22px; font-variant-numeric: tabular-nums; }
  .charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(380px, 1fr)); gap: 16px; }
  figure { margin: 0; background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
  figcaption { color: var(--muted); font-size: 12px; margin-bottom: 6px; }
  canvas { width: 100%; height: 180px; display: block; }
  .key { white-space: nowrap; margin-right: 10px; }
  .swatch { display: inline-block; width: 24px; vertical-align: middle; margin-right: 5px; border-top: 2px solid; }
  .swatch.dashed { border-top-style: dashed; }
  table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
  th, td { text-align: right; padding: 5px 10px; border-bottom: 1px solid var(--line); }
  th:first-child, td:first-child { text-align: left; }
  th { color: var(--muted); font-weight: 500; font-size: 12px; }
  h2 { font-size: 15px; margin: 0 0 6px; }
  .empty { color: var(--muted); }
  .cluster { display: none; }
  .cluster.shown { display: block; }
  td.bad { color: var(--bad); font-weight: 600; }
  #problem { display: none; color: #fff; background: var(--bad); padding: 8px 24px; }
  #problem.shown { display: block; }
  footer { color: var(--muted); font-size: 12px; padding: 0 24px 16px; }
</style>
</head>
<body>
<div id="problem" role="alert"></div>
<header>
  <h1>MemoryStreamer</h1>
  <span>broker <b id="broker-id">…</b></span>
  <span>up <b id="uptime">…</b></span>
  <span>updated <b id="updated">never</b></span>
</header>
<main>
  <section class="cards">
    <div class="card"><div class="label">produce messages/s</div><div class="value" id="produce-rate">–</div></div>
    <div class="card"><div class="label">produce MB/s</div><div class="value" id="produce-mbps">–</div></div>
    <div class="card"><div class="label">fetch MB/s</div><div class="value" id="fetch-mbps">–</div></div>
    <div class="card"><div class="label">produce P99 (last second)</div><div class="value" id="produce-p99">–</div></div>
    <div class="card"><div class="label">connections</div><div class="value" id="connections">–</div></div>
    <div class="card"><div class="label">memory RSS / held by connections</div><div class="value" id="memory">–</div></div>
    <div class="card"><div class="label">request errors/s</div><div class="value" id="error-rate">–</div></div>
  </section>
  <section class="charts">
    <figure><figcaption id="throughput-legend">Throughput, last 2 minutes:
      <span class="key" data-series="produce"><i class="swatch" style="border-top-color:var(--accent)"></i>produce msg/s (left axis)</span>
      <span class="key" data-series="fetch"><i class="swatch dashed" style="border-top-color:var(--accent2)"></i>fetch MB/s (right axis)</span></figcaption><canvas id="throughput-chart"></canvas></figure>
    <figure><figcaption id="latency-legend">Produce latency, last 2 minutes (upper bucket bound):
      <span class="key" data-series="p50"><i class="swatch" style="border-top-color:var(--accent)"></i>P50</span>
      <span class="key" data-series="p99"><i class="swatch dashed" style="border-top-color:var(--accent2)"></i>P99</span></figcaption><canvas id="latency-chart"></canvas></figure>
  </section>
  <section>
    <h2>Topics</h2>
    <table id="topics"><thead><tr><th>topic</th><th>partitions</th><th>messages</th><th>size</th><th>messages/s</th></tr></thead><tbody></tbody></table>
  </section>
  <section class="cluster" id="cluster-brokers">
    <h2>Brokers <span class="empty" id="cluster-id"></span></h2>
    <table id="brokers"><thead><tr><th>broker</th><th>address</th><th>live</th><th>controller</th></tr></thead><tbody></tbody></table>
  </section>
  <section class="cluster" id="cluster-replication">
    <h2>Replication <span class="empty" id="replication-summary"></span></h2>
    <table id="replication"><thead><tr><th>partition</th><th>leader</th><th>leader epoch</th><th>replicas</th><th>in-sync replicas</th><th>state</th></tr></thead><tbody></tbody></table>
  </section>
  <section>
    <h2>Consumer groups</h2>
    <table id="groups"><thead><tr><th>group</th><th>state</th><th>members</th><th>generation</th><th>lag (messages)</th></tr></thead><tbody></tbody></table>
  </section>
</main>
<footer>Figures are derived from <a href="api/status">/api/status</a> once a second; Prometheus metrics are at <a href="metrics">/metrics</a>.</footer>
<script src="status.js"></script>
</body>
</html>
`;

/**
 * The value axis of a chart, in the page's JavaScript (a string, as the rest of the script):
 * `niceAxis(max, integer)` gives ticks from 0 that are round and distinct, a step of 1, 2 or 5 × 10^k
 * (at least 1 when the values are counts) in about four intervals, the last tick the first at or
 * above `max`, and the decimals a label needs. An idle chart (nothing above 0) gets 0..1, labelled
 * 0, 0.5, 1 (or 0, 1 for counts), never 0, 0, 1, 1, 1.
 */
export const STATUS_PAGE_AXIS_SCRIPT = `function niceAxis(max, integer) {
    var top = max > 0 && isFinite(max) ? max : 1;
    var rough = top / 4;
    var magnitude = Math.pow(10, Math.floor(Math.log10(rough)));
    var residual = rough / magnitude;
    var step = (residual <= 1 + 1e-9 ? 1 : residual <= 2 + 1e-9 ? 2 : residual <= 5 + 1e-9 ? 5 : 10) * magnitude;
    if (integer && step < 1) step = 1;
    var decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
    var intervals = Math.max(1, Math.ceil(top / step - 1e-9));
    var ticks = [];
    for (var i = 0; i <= intervals; i++) ticks.push(Number((i * step).toFixed(decimals)));
    return { max: ticks[ticks.length - 1], ticks: ticks, decimals: decimals };
  }`;

export const STATUS_PAGE_SCRIPT = `'use strict';
(function () {
  var HISTORY = 120;
  var previous = null;
  var series = { produce: [], fetch: [], p50: [], p99: [] };

  function $(id) { return document.getElementById(id); }
  function setText(id, text) { $(id).textContent = text; }
  function fmt(n, digits) {
    if (!isFinite(n)) return '–';
    if (Math.abs(n) >= 1e6) return (n / 1e6).toFixed(2) + 'M';
    if (Math.abs(n) >= 1e4) return (n / 1e3).toFixed(1) + 'k';
    return n.toFixed(digits === undefined ? 0 : digits);
  }
  function bytes(n) {
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return n.toFixed(i === 0 ? 0 : 1) + ' ' + units[i];
  }
  function duration(seconds) {
    if (seconds < 60) return Math.floor(seconds) + ' s';
    if (seconds < 3600) return Math.floor(seconds / 60) + ' min';
    if (seconds < 86400) return (seconds / 3600).toFixed(1) + ' h';
    return (seconds / 86400).toFixed(1) + ' d';
  }
  function ms(seconds) {
    if (seconds === null) return '–';
    if (seconds === Infinity) return '> 30 s';
    if (seconds < 0.001) return '≤ ' + Math.round(seconds * 1e6) + ' µs';
    return '≤ ' + (seconds * 1000).toFixed(seconds < 0.01 ? 2 : 1) + ' ms';
  }

  // The upper bound of the bucket holding quantile q of the requests between two cumulative
  // histograms (Infinity for the +Inf bucket), or null when no request finished in between.
  function quantile(bounds, now, before, q) {
    if (!now) return null;
    var total = now[now.length - 1] - (before ? before[before.length - 1] : 0);
    if (total <= 0) return null;
    for (var i = 0; i < now.length; i++) {
      var count = now[i] - (before ? before[i] : 0);
      if (count >= q * total) return i < bounds.length ? bounds[i] : Infinity;
    }
    return Infinity;
  }

  function push(list, value) {
    list.push(value);
    if (list.length > HISTORY) list.shift();
  }

  function fillTable(id, rows, columns) {
    var body = $(id).tBodies[0];
    while (body.firstChild) body.removeChild(body.firstChild);
    if (rows.length === 0) {
      var tr = document.createElement('tr');
      var td = document.createElement('td');
      td.colSpan = columns;
      td.className = 'empty';
      td.textContent = 'none';
      tr.appendChild(td);
      body.appendChild(tr);
      return;
    }
    rows.forEach(function (row) {
      var tr = document.createElement('tr');
      tr.dataset.name = row.key;
      row.cells.forEach(function (cell) {
        var td = document.createElement('td');
        td.textContent = cell.text;
        if (cell.testId) td.dataset.testid = cell.testId;
        if (cell.bad) td.className = 'bad';
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }

  ${STATUS_PAGE_AXIS_SCRIPT}

  // Draws the lines of one chart. Each axis is { format(value, decimals), integer }; a line is
  // { values, color, axis, dashed }. The second series of a chart is dashed (and the legend says
  // so): when two lines coincide, as at idle or when a consumer keeps up, both stay visible.
  function draw(canvas, lines, leftAxis, rightAxis) {
    var ratio = window.devicePixelRatio || 1;
    var width = canvas.clientWidth, height = canvas.clientHeight;
    canvas.width = width * ratio;
    canvas.height = height * ratio;
    var g = canvas.getContext('2d');
    g.scale(ratio, ratio);
    var style = getComputedStyle(document.documentElement);
    var left = 56, right = rightAxis ? 56 : 10, top = 8, bottom = 18;
    var plotW = width - left - right, plotH = height - top - bottom;
    g.font = '11px system-ui, sans-serif';
    g.strokeStyle = style.getPropertyValue('--line');
    g.fillStyle = style.getPropertyValue('--muted');
    g.lineWidth = 1;
    function scaleOf(axis, spec) {
      var m = 0;
      lines.forEach(function (l) { if (l.axis === axis) l.values.forEach(function (v) { if (v !== null && v > m) m = v; }); });
      return niceAxis(m, spec.integer);
    }
    var scaleLeft = scaleOf('left', leftAxis);
    var scaleRight = rightAxis ? scaleOf('right', rightAxis) : null;
    scaleLeft.ticks.forEach(function (tick) {
      var y = top + plotH - (plotH * tick) / scaleLeft.max;
      g.beginPath(); g.moveTo(left, y); g.lineTo(left + plotW, y); g.stroke();
      g.textAlign = 'right';
      g.fillText(leftAxis.format(tick, scaleLeft.decimals), left - 6, y + 4);
    });
    if (scaleRight) {
      g.textAlign = 'left';
      scaleRight.ticks.forEach(function (tick) {
        g.fillText(rightAxis.format(tick, scaleRight.decimals), left + plotW + 6, top + plotH - (plotH * tick) / scaleRight.max + 4);
      });
    }
    g.textAlign = 'left';
    g.fillText('-' + HISTORY + ' s', left, height - 4);
    g.textAlign = 'right';
    g.fillText('now', left + plotW, height - 4);
    lines.forEach(function (line) {
      var max = line.axis === 'right' ? scaleRight.max : scaleLeft.max;
      g.strokeStyle = style.getPropertyValue(line.color);
      g.lineWidth = 1.6;
      g.setLineDash(line.dashed ? [6, 4] : []);
      g.beginPath();
      var started = false;
      var offset = HISTORY - line.values.length;
      line.values.forEach(function (v, i) {
        if (v === null) { started = false; return; }
        var x = left + (plotW * (offset + i)) / (HISTORY - 1);
        var y = top + plotH - (plotH * v) / max;
        if (started) g.lineTo(x, y); else { g.moveTo(x, y); started = true; }
      });
      g.stroke();
    });
    g.setLineDash([]);
  }

  function render(now) {
    setText('broker-id', now.brokerId.slice(0, 8));
    setText('uptime', duration(now.uptimeSeconds));
    setText('updated', new Date(now.time).toLocaleTimeString());
    setText('connections', String(now.connections));
    setText('memory', bytes(now.memory.rssBytes) + ' / ' + bytes(now.memory.heldBytes));
    var seconds = previous ? (now.time - previous.time) / 1000 : 0;
    var topicRates = {};
    if (previous && seconds > 0) {
      var m = now.metrics, p = previous.metrics;
      var produceRate = (m.producedMessages - p.producedMessages) / seconds;
      var fetchMBps = (m.fetchedBytes - p.fetchedBytes) / seconds / 1e6;
      setText('produce-rate', fmt(produceRate));
      setText('produce-mbps', fmt((m.producedBytes - p.producedBytes) / seconds / 1e6, 2));
      setText('fetch-mbps', fmt(fetchMBps, 2));
      setText('error-rate', fmt((m.errors - p.errors) / seconds, 1));
      var bounds = m.latency.bucketsSeconds;
      var p50 = quantile(bounds, m.latency.operations.produce, p.latency.operations.produce, 0.5);
      var p99 = quantile(bounds, m.latency.operations.produce, p.latency.operations.produce, 0.99);
      setText('produce-p99', ms(p99));
      push(series.produce, produceRate);
      push(series.fetch, fetchMBps);
      // The chart cannot draw the +Inf bucket: such a point is left out.
      push(series.p50, p50 === null || p50 === Infinity ? null : p50 * 1000);
      push(series.p99, p99 === null || p99 === Infinity ? null : p99 * 1000);
      var before = {};
      previous.topics.forEach(function (t) { before[t.name] = t.endOffsets; });
      now.topics.forEach(function (t) {
        topicRates[t.name] = before[t.name] === undefined ? 0 : Math.max(0, t.endOffsets - before[t.name]) / seconds;
      });
    }
    fillTable('topics', now.topics.map(function (t) {
      return { key: t.name, cells: [
        { text: t.name }, { text: String(t.partitions) }, { text: fmt(t.messages) }, { text: bytes(t.sizeBytes) },
        { text: topicRates[t.name] === undefined ? '–' : fmt(topicRates[t.name], 1), testId: 'topic-rate' },
      ] };
    }), 5);
    fillTable('groups', now.groups.map(function (gr) {
      return { key: gr.groupId, cells: [
        { text: gr.groupId }, { text: gr.state }, { text: String(gr.members) }, { text: String(gr.generation) },
        { text: fmt(gr.lag), testId: 'group-lag' },
      ] };
    }), 5);
    renderCluster(now.cluster);
    draw($('throughput-chart'), [
      { values: series.produce, color: '--accent', axis: 'left', dashed: false },
      { values: series.fetch, color: '--accent2', axis: 'right', dashed: true },
    ], { format: fmt, integer: true }, { format: function (v, d) { return v.toFixed(d); }, integer: false });
    draw($('latency-chart'), [
      { values: series.p50, color: '--accent', axis: 'left', dashed: false },
      { values: series.p99, color: '--accent2', axis: 'left', dashed: true },
    ], { format: function (v, d) { return v.toFixed(d) + ' ms'; }, integer: false });
    previous = now;
  }

  // A cluster member's brokers and its partitions' replication; hidden on a broker alone.
  function renderCluster(cluster) {
    $('cluster-brokers').className = cluster ? 'cluster shown' : 'cluster';
    $('cluster-replication').className = cluster ? 'cluster shown' : 'cluster';
    if (!cluster) return;
    setText('cluster-id', 'cluster ' + (cluster.clusterId || '?') +
      (cluster.controllerId < 0 ? ', no controller elected' : ''));
    setText('replication-summary', cluster.underReplicated + ' under-replicated, ' + cluster.offline + ' offline');
    fillTable('brokers', cluster.brokers.map(function (b) {
      return { key: String(b.id), cells: [
        { text: String(b.id) }, { text: b.address || '–' },
        { text: b.live ? 'yes' : 'no', testId: 'broker-live', bad: !b.live },
        { text: b.controller ? 'controller' : '', testId: 'broker-controller' },
      ] };
    }), 4);
    fillTable('replication', cluster.partitions.map(function (p) {
      var state = p.offline ? 'offline' : p.underReplicated ? 'under-replicated' : 'ok';
      return { key: p.topic + '/' + p.partition, cells: [
        { text: p.topic + '/' + p.partition }, { text: p.leader < 0 ? 'none' : String(p.leader), testId: 'leader' },
        { text: String(p.leaderEpoch) }, { text: p.replicas.join(', ') },
        { text: p.isr.join(', '), testId: 'isr' },
        { text: state, testId: 'replication-state', bad: state !== 'ok' },
      ] };
    }), 6);
  }

  function tick() {
    fetch('api/status', { cache: 'no-store' })
      .then(function (response) {
        if (!response.ok) throw new Error('HTTP ' + response.status);
        return response.json();
      })
      .then(function (status) {
        $('problem').className = '';
        render(status);
      })
      .catch(function (error) {
        var problem = $('problem');
        problem.textContent = 'Cannot reach the broker (' + error.message + '); retrying every second.';
        problem.className = 'shown';
      })
      .finally(function () { setTimeout(tick, 1000); });
  }
  tick();
})();
`;
