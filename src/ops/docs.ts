/**
 * Regenerates the reference docs that are derived from code (`npm run docs`).
 * Tests compare each file with its renderer, so a stale doc fails the suite.
 */
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { renderConfigDocs } from './config/docs.js';
import { renderEventDocs } from '../telemetry/events.js';
import { renderMetricDocs } from '../telemetry/telemetry.js';

export const GENERATED_DOCS: Record<string, () => string> = {
  'docs/config.md': renderConfigDocs,
  'docs/log-codes.md': renderEventDocs,
  'docs/metrics.md': renderMetricDocs,
};

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const [file, render] of Object.entries(GENERATED_DOCS)) writeFileSync(file, render());
}
