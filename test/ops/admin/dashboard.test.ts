/**
 * The dashboard end to end, in a real headless Chromium (Debian's, driven by
 * playwright-core): the page loads with its assets from the node, the charts
 * draw live data while agents send, and a click on a session opens its
 * details with a live tail of its records. Saves a screenshot.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect, launchChromium, waitFor } from '../../helpers.js';
import { ADMIN_TOKEN, TWO_TENANTS, frame, startAdminFixture } from './admin-helpers.js';

test('dashboard: live charts under load, a session drill-down with its live tail, in headless Chromium', { timeout: 120_000 }, async (t) => {
  const browser = await launchChromium();
  if (typeof browser === 'string') return t.skip(browser);
  t.after(() => browser.close());
  const { base, tcpPort, node } = await startAdminFixture(t, TWO_TENANTS);
  // The charts read these metrics by name: the node must register each itself (no stand-ins that would hide a rename).
  const registry = node.telemetry.registry;
  for (const name of ['sluice_memory_state', 'sluice_memory_accounted_bytes', 'sluice_event_loop_delay_p99_seconds', 'sluice_restarts_total']) {
    assert.ok(registry.getSingleMetric(name) !== undefined, `the node registers ${name}`);
  }

  // Load: two agents of two tenants, a batch every 50 ms until the test ends.
  const acme = await connect(tcpPort, '127.0.0.1');
  const globex = await connect(tcpPort, '127.0.0.2');
  let sent = 0;
  const load = setInterval(() => {
    acme.write(Array.from({ length: 20 }, () => frame('web-01', `acme record ${sent++}`)).join(''));
    globex.write(frame('db-01', `globex record ${sent++}`));
  }, 50);
  t.after(() => {
    clearInterval(load);
    acme.destroy();
    globex.destroy();
  });

  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const failures: string[] = [];
  page.on('pageerror', (err) => failures.push(err.message));
  page.on('requestfailed', (request) => {
    if (!request.url().includes('/api/')) failures.push(`${request.url()}: ${request.failure()?.errorText}`);
  });
  // Nothing may come from anywhere but the node.
  const origins = new Set<string>();
  page.on('request', (request) => origins.add(new URL(request.url()).origin));
  // The token rides in the fragment, which the page moves to sessionStorage.
  await page.goto(`${base}/#token=${ADMIN_TOKEN}`);
  await page.waitForSelector('#status.live', { timeout: 15_000 });

  // Charts: uPlot canvases with points whose rates are above zero.
  const drawn = await waitFor('the message-rate chart has non-zero points', async () => {
    const points = await page.evaluate(() => {
      const charts = (globalThis as unknown as { sluiceDashboard: { charts: Record<string, { data: (number | null)[][] } | null> } }).sluiceDashboard.charts;
      return { accepted: charts.messages!.data[2]!, bytes: charts.bytes!.data[2]!, memory: charts.memory?.data[1] ?? [] };
    });
    return points.accepted.filter((v) => (v ?? 0) > 0).length >= 2 ? points : undefined;
  }, 30_000);
  assert.ok(drawn.bytes.some((v) => (v ?? 0) > 0), 'bytes/s has data');
  assert.ok(drawn.memory.some((v) => (v ?? 0) > 0), 'memory has data');
  assert.ok(await page.locator('.chart canvas').count() >= 6, 'the six charts are drawn on canvases');
  const seriesOf = (chart: string) => page.evaluate((name) => {
    const charts = (globalThis as unknown as { sluiceDashboard: { charts: Record<string, { labels: string[] } | null> } }).sluiceDashboard.charts;
    return charts[name]?.labels ?? [];
  }, chart);
  assert.ok((await seriesOf('memory')).includes('accounted sessions'), 'the governor\'s accounted bytes are charted');
  assert.ok((await seriesOf('loop')).includes('p99'), 'the event-loop delay is charted from sluice_event_loop_delay_p99_seconds');
  assert.match(await page.locator('#headline').innerText(), /memory normal.*0 restarts/);
  assert.ok(await page.locator('#tenants tbody tr').count() >= 2, 'the tenants table lists both tenants');
  assert.match(await page.locator('#sinks tbody').innerText(), /files\s+up/);

  // Sorting by a column reorders the tenants table.
  await page.locator('#tenants th[data-key="tenant"]').click();
  await waitFor('tenants sorted by name', async () => (await page.locator('#tenants tbody tr td:first-child').allInnerTexts()).join(',') === 'acme,globex');

  // Drill-down: click acme's session; its details and its records arrive.
  const row = page.locator('#sessions tbody tr', { hasText: 'acme' }).first();
  await row.waitFor({ timeout: 10_000 });
  await row.click();
  await page.waitForSelector('#details:not([hidden])');
  await waitFor('the session tail shows acme records', async () => /acme record \d+/.test(await page.locator('#details-tail').innerText()), 15_000);
  const tail = await page.locator('#details-tail').innerText();
  assert.doesNotMatch(tail, /globex record/, 'the tail is of the clicked session only');
  assert.match(await page.locator('#details-fields').innerText(), /tenant\s+acme/);

  const folder = mkdtempSync(path.join(tmpdir(), 'sluice-dashboard-'));
  const screenshot = path.join(folder, 'dashboard.png');
  await page.screenshot({ path: screenshot, timeout: 15_000 });
  process.stdout.write(`dashboard screenshot: ${screenshot}\n`);
  t.diagnostic(`screenshot: ${screenshot}`);

  assert.deepEqual(failures, []);
  assert.deepEqual([...origins], [base], 'every request went to the node');
});
