/** Shared by the admin server tests: a node with its admin server, HTTP calls, SSE reading. */
import { createHash } from 'node:crypto';
import { LocalControl } from '../../../src/ops/admin/local-control.js';
import { startAdminServer, type RunningAdminServer } from '../../../src/ops/admin/server.js';
import { readEvents } from '../../../src/ops/admin/commands.js';
import type { SluiceNode } from '../../../src/ops/node.js';
import { startTestNode } from '../../helpers.js';

export const ADMIN_TOKEN = 'admin-token-0123456789abcdef';
export const ACME_TOKEN = 'acme-token-0123456789abcdef';
export const GLOBEX_TOKEN = 'globex-token-0123456789abcdef';

/**
 * Two tenants told apart by source address (127.0.0.1 is acme, 127.0.0.2
 * globex); a whole-node token, and one token per tenant (globex's written as
 * its SHA-256, as an operator who keeps secrets out of the file would).
 */
export const TWO_TENANTS = `
tenants:
  acme: { networks: [127.0.0.1] }
  globex: { networks: [127.0.0.2] }
admin:
  tokens:
    - { token: ${ADMIN_TOKEN} }
    - { token: ${ACME_TOKEN}, tenant: acme }
    - { token: "sha256:${createHash('sha256').update(GLOBEX_TOKEN).digest('hex')}", tenant: globex }
`;

export interface AdminFixture {
  node: SluiceNode;
  server: RunningAdminServer;
  base: string;
  tcpPort: number;
  dir: string;
}

export async function startAdminFixture(t: { after(fn: () => void | Promise<void>): void }, yaml: string, dir?: string): Promise<AdminFixture> {
  const started = dir === undefined ? await startTestNode(t, yaml) : await startTestNode(t, yaml, dir);
  const server = await startAdminServer(started.node.config, new LocalControl(started.node), started.node.telemetry);
  t.after(() => server.close());
  return { node: started.node, server, base: `http://127.0.0.1:${server.port}`, tcpPort: started.tcpPort, dir: started.node.config.dataDir };
}

export async function call(base: string, route: string, token: string | null, init: { method?: string; body?: unknown } = {}): Promise<{ status: number; body: unknown; text: string }> {
  const headers: Record<string, string> = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${base}${route}`, { method: init.method ?? 'GET', headers, ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }) });
  const text = await response.text();
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch { /* not JSON */ }
  return { status: response.status, body, text };
}

/** An open SSE tail: the lines it has received so far, and how to close it. */
export interface OpenTail {
  status: number;
  lines: string[];
  /** Why the stream ended other than by close(), if it did. */
  failure(): Error | null;
  close(): void;
}

export async function openTail(base: string, query: string, token: string | null): Promise<OpenTail> {
  const abort = new AbortController();
  const response = await fetch(`${base}/api/tail${query}`, { headers: token === null ? {} : { authorization: `Bearer ${token}` }, signal: abort.signal });
  const lines: string[] = [];
  let failed: Error | null = null;
  if (response.ok) {
    void readEvents(response.body!, (event, data) => {
      if (event === 'message') lines.push(data);
    }).catch((err: Error) => {
      // close() aborts the stream: only another end is a failure.
      if (!abort.signal.aborted) failed = err;
    });
  } else {
    await response.text();
  }
  return { status: response.status, lines, failure: () => failed, close: () => abort.abort() };
}

/** An RFC 5424 frame, octet-counted. */
export function frame(host: string, msg: string): string {
  const line = `<13>1 2026-11-27T10:00:00Z ${host} app - - - ${msg}`;
  return `${Buffer.byteLength(line)} ${line}`;
}
