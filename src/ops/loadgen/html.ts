/**
 * `report.html`: one self-contained file (uPlot's script and styles inlined,
 * read from the installed package when the report is written, so it opens
 * offline) with the summary, latency by percentile on HdrHistogram's
 * log-scaled 1/(1 − p) axis, throughput per second and p99 per second.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { percentileCurve, summaryCells } from './histogram.js';
import type { ReportJson } from './report-json.js';
import type { LoadgenResult } from './run.js';

const require = createRequire(import.meta.url);

export function uplotAssets(): { js: string; css: string } {
  const dist = path.join(path.dirname(require.resolve('uplot/package.json')), 'dist');
  return {
    js: readFileSync(path.join(dist, 'uPlot.iife.min.js'), 'utf8'),
    css: readFileSync(path.join(dist, 'uPlot.min.css'), 'utf8'),
  };
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

/** Text that cannot end the element it is inlined in. */
function inline(text: string, element: 'script' | 'style'): string {
  return text.replace(new RegExp(`</${element}`, 'gi'), `<\\/${element}`);
}

function table(head: string[], rows: (string | number)[][]): string {
  const cells = (r: (string | number)[], tag: string): string => r.map((c) => `<${tag}>${escapeHtml(String(c))}</${tag}>`).join('');
  return `<table><thead><tr>${cells(head, 'th')}</tr></thead><tbody>${rows.map((r) => `<tr>${cells(r, 'td')}</tr>`).join('')}</tbody></table>`;
}

export function renderHtml(result: LoadgenResult, report: ReportJson): string {
  const { js, css } = uplotAssets();
  const multiTenant = result.perTenant.length > 1;
  const histograms = [result.latency, ...(multiTenant ? result.perTenant.map((t) => t.latency) : [])];
  const labels = ['all', ...(multiTenant ? result.perTenant.map((t) => t.tenant) : [])];
  const curve = percentileCurve(histograms);
  const plotData = {
    percentile: { x: curve.x, series: curve.ms.map((ms, i) => ({ label: labels[i], ms })) },
    timeline: {
      t: report.timeline.map((e) => e.t),
      sent: report.timeline.map((e) => e.sent),
      delivered: report.timeline.map((e) => e.delivered),
      p99Ms: report.timeline.map((e) => e.p99Ms),
    },
  };
  const title = `sluice loadgen: ${report.pattern} over ${report.protocol}, ${report.agents} agents, ${report.tenants} tenant(s)`;
  const summary = table(
    ['', 'p50', 'p90', 'p99', 'p99.9', 'max', 'count'],
    [
      [result.latencyMeasures === 'ack' ? 'send → ack (ms)' : 'send → visible (ms)', ...summaryCells(report.latencyMs, '–')],
      // At 0 s the steady part is the whole run: the row above.
      ...(report.steadyAfterSec === 0 ? [] : [[`from ${report.steadyAfterSec} s (ms)`, ...summaryCells(report.steadyLatencyMs, '–')]]),
      ['connect (ms)', report.connectMs.p50, '', report.connectMs.p99, '', report.connectMs.max, result.connect.totalCount],
    ],
  );
  const totals = table(
    ['throughput /s', 'sent', 'delivered', 'lost', 'duplicates', 'errors: connect', 'reset', 'other'],
    [[report.throughputPerSec, report.sent, report.delivered, report.lost, report.duplicates,
      report.errors.connect, report.errors.reset, report.errors.other]],
  );
  const tenants = table(
    ['tenant', 'sent', 'delivered', 'lost', 'p50 ms', 'p90 ms', 'p99 ms', 'p99.9 ms', 'max ms'],
    report.perTenant.map((t) => [t.tenant, t.sent, t.delivered, t.lost, t.latencyMs.p50, t.latencyMs.p90,
      t.latencyMs.p99, t.latencyMs.p999, t.latencyMs.max]),
  );
  const codes = Object.entries(result.errorCodes);
  const settings = [
    `target ${report.target}`, `${report.workers} worker(s)`, `${report.durationSec} s sending`,
    `${result.options.messageBytes}-byte messages`, `started ${result.startedAt}`, `run ${result.runId}`,
    `generator event-loop delay: workers p99 ${result.generatorDelay.workers.p99Ms} ms, max ${result.generatorDelay.workers.maxMs} ms; `
    + `probe p99 ${result.generatorDelay.main.p99Ms} ms, max ${result.generatorDelay.main.maxMs} ms`,
    ...(result.interrupted ? ['interrupted'] : []),
  ].join(' · ');

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(title)}</title>
<style>${inline(css, 'style')}</style>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { padding: 3px 10px; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.plot { margin: 16px 0 24px; }
.note { color: #666; }
</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
<p class="note">${escapeHtml(settings)}</p>
${summary}
${totals}
<h2>Per tenant</h2>
${tenants}
${codes.length > 0 ? `<h2>Errors by code</h2>${table(['code', 'count'], codes)}` : ''}
<h2>Latency by percentile</h2>
<div id="percentile" class="plot"></div>
<h2>Throughput</h2>
<div id="throughput" class="plot"></div>
<h2>${result.latencyMeasures === 'ack' ? 'p99 send → visible in the file sink, per second (the acks are not timed per second)' : 'p99 latency per second'}</h2>
<div id="p99" class="plot"></div>
<script>${inline(js, 'script')}</script>
<script id="loadgen-data" type="application/json">${JSON.stringify({ report, plot: plotData }).replace(/</g, '\\u003c')}</script>
<script>
(function () {
  var data = JSON.parse(document.getElementById('loadgen-data').textContent);
  var colors = ['#222', '#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22'];
  var width = Math.min(1000, document.body.clientWidth - 16);
  function percentileLabel(x) {
    if (x == null) return '';
    var p = 100 * (1 - 1 / x);
    return (x >= 100 ? p.toPrecision(Math.max(2, Math.ceil(Math.log10(x)))) : p.toFixed(0)) + '%';
  }
  var pc = data.plot.percentile;
  new uPlot({
    width: width, height: 360,
    scales: { x: { time: false, distr: 3, log: 10 }, y: { range: function (u, min, max) { return [0, max > 0 ? max * 1.05 : 1]; } } },
    axes: [
      { label: 'percentile (log scale of 1 / (1 − p))', values: function (u, splits) { return splits.map(percentileLabel); } },
      { label: 'latency (ms)' }
    ],
    series: [{ label: 'percentile', value: function (u, v) { return percentileLabel(v); } }].concat(pc.series.map(function (s, i) {
      return { label: s.label, stroke: colors[i % colors.length], width: i === 0 ? 2 : 1, value: function (u, v) { return v == null ? '' : v + ' ms'; } };
    }))
  }, [pc.x].concat(pc.series.map(function (s) { return s.ms; })), document.getElementById('percentile'));
  var tl = data.plot.timeline;
  new uPlot({
    width: width, height: 280,
    scales: { x: { time: false } },
    axes: [{ label: 'second of the run' }, { label: 'messages / s' }],
    series: [{ label: 's' }, { label: 'sent', stroke: '#1f77b4', width: 2 }, { label: 'delivered', stroke: '#2ca02c', width: 2 }]
  }, [tl.t, tl.sent, tl.delivered], document.getElementById('throughput'));
  new uPlot({
    width: width, height: 220,
    scales: { x: { time: false } },
    axes: [{ label: 'second of the run' }, { label: 'p99 (ms)' }],
    series: [{ label: 's' }, { label: 'p99 ms', stroke: '#d62728', width: 2 }]
  }, [tl.t, tl.p99Ms], document.getElementById('p99'));
})();
</script>
</body>
</html>
`;
}
