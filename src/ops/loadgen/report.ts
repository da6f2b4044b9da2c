/**
 * A run's results as the short table printed at the end, and as report.json
 * (report-json.ts) and report.html (html.ts) on disk.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { microsToMs, summaryCells, type LatencySummaryMs } from './histogram.js';
import { renderHtml } from './html.js';
import { toReportJson } from './report-json.js';
import type { LoadgenResult } from './run.js';

/** Per-tenant rows printed at most; report.json and report.html have them all. */
const PRINTED_TENANTS = 20;

function row(label: string, cells: (string | number)[]): string {
  return label.padEnd(16) + cells.map((c) => String(c).padStart(11)).join('');
}

function latencyRow(label: string, s: LatencySummaryMs | null): string {
  return row(label, summaryCells(s, '-'));
}

export function formatSummary(result: LoadgenResult): string {
  const { options } = result;
  const report = toReportJson(result);
  const lines: string[] = [];
  const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
  lines.push(`sluice loadgen: ${options.pattern} over ${options.protocol} to ${options.target.url}, `
    + `${plural(options.agents, 'agent')}, ${plural(options.tenants, 'tenant')}, ${plural(options.workers, 'worker')}, `
    + `${result.sendingSec} s${result.interrupted ? ' (interrupted)' : ''}`);
  const measured = options.pattern !== 'idle';
  if (measured && result.latencyMeasures === 'ack') {
    lines.push(`latency: from send to the node's acknowledgement (${options.protocol} answer 200); `
      + 'delivered and lost are counted in the file sink');
  }
  lines.push(row('', ['p50', 'p90', 'p99', 'p99.9', 'max', 'count']));
  if (measured) {
    lines.push(latencyRow(result.latencyMeasures === 'ack' ? 'send → ack ms' : 'latency ms', report.latencyMs));
    // At 0 s the steady part is the whole run: the row above.
    if (report.steadyAfterSec > 0) lines.push(latencyRow(`  from ${report.steadyAfterSec} s`, report.steadyLatencyMs));
    if (options.tenants > 1) {
      for (const t of report.perTenant.slice(0, PRINTED_TENANTS)) lines.push(latencyRow(`  ${t.tenant}`, t.latencyMs));
    }
  }
  const c = result.connect;
  const connectCells = c.totalCount === 0 ? summaryCells(null, '-')
    : [50, 90, 99, 99.9].map((p) => microsToMs(c.getValueAtPercentile(p))).concat([microsToMs(c.maxValue), c.totalCount]);
  lines.push(row('connect ms', connectCells));
  if (measured) {
    lines.push(`throughput ${report.throughputPerSec}/s   sent ${result.sent}   delivered ${result.delivered}   `
      + `lost ${result.lost}   duplicates ${result.duplicates}`);
    if (options.tenants > 1) {
      for (const t of report.perTenant.slice(0, PRINTED_TENANTS)) {
        lines.push(`  ${t.tenant}: sent ${t.sent}   delivered ${t.delivered}   lost ${t.lost}`);
      }
      if (report.perTenant.length > PRINTED_TENANTS) lines.push(`  … ${report.perTenant.length - PRINTED_TENANTS} more tenants in report.json`);
    }
  }
  const errorTotal = result.errors.connect + result.errors.reset + result.errors.other;
  const codes = Object.entries(result.errorCodes).map(([code, n]) => `${code} ${n}`).join(', ');
  lines.push(`errors ${errorTotal} (connect ${result.errors.connect}, reset ${result.errors.reset}, other ${result.errors.other})`
    + (codes === '' ? '' : `: ${codes}`));
  lines.push(`connections: ${result.initiallyOpen} of ${options.agents} open after connecting, ${result.connects} established in all`
    + (result.notConnected > 0 ? `; ${result.notConnected} messages skipped while disconnected` : '')
    + (result.throttled > 0 ? `; ${result.throttled} flood messages skipped on a full send buffer` : ''));
  const sharing = new Map<string, string[]>();
  result.perTenant.forEach((t, i) => {
    for (const folder of t.nodeTenants) sharing.set(folder, [...(sharing.get(folder) ?? []), `t${i}`]);
  });
  for (const [folder, tenants] of sharing) {
    if (tenants.length > 1) {
      lines.push(`warning: the records of tenants ${tenants.join(', ')} all landed in node tenant "${folder}": `
        + 'start the node with the configuration `sluice loadgen --print-node-config` prints to keep them apart');
    }
  }
  const { main, workers } = result.generatorDelay;
  lines.push(`generator event-loop delay (ms): workers p99 ${workers.p99Ms}, max ${workers.maxMs}; `
    + `probe p99 ${main.p99Ms}, max ${main.maxMs}`);
  if (measured && result.sent > 0 && result.delivered === 0) {
    lines.push(`warning: nothing arrived under ${options.logsDir}: is --data-dir (or --logs-dir) where the node writes?`);
  }
  return lines.join('\n');
}

export function writeReports(result: LoadgenResult, dir: string): { json: string; html: string } {
  mkdirSync(dir, { recursive: true });
  const json = path.join(dir, 'report.json');
  const html = path.join(dir, 'report.html');
  const report = toReportJson(result);
  writeFileSync(json, JSON.stringify(report, null, 2) + '\n');
  writeFileSync(html, renderHtml(result, report));
  return { json, html };
}
