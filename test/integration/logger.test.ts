/**
 * The real `logger` (util-linux) as the agent, over UDP and TCP, in both
 * syslog formats: what it sends must land in the NDJSON with its fields parsed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { hostname } from 'node:os';
import { readTenantRecords, requireProgram, startTestNode, waitFor } from '../helpers.js';

const skip = requireProgram('logger', 'Debian package bsdutils (util-linux)');

function send(args: string[]): void {
  execFileSync('logger', args, { stdio: 'pipe' });
}

const variants: { name: string; transport: 'udp' | 'tcp'; args: string[]; rfc5424: boolean }[] = [
  { name: 'UDP, RFC 5424', transport: 'udp', args: ['-d', '--rfc5424'], rfc5424: true },
  { name: 'UDP, RFC 3164', transport: 'udp', args: ['-d', '--rfc3164'], rfc5424: false },
  { name: 'TCP octet-counted, RFC 5424', transport: 'tcp', args: ['-T', '--octet-count', '--rfc5424'], rfc5424: true },
  { name: 'TCP LF-framed, RFC 5424', transport: 'tcp', args: ['-T', '--rfc5424'], rfc5424: true },
  { name: 'TCP LF-framed, RFC 3164', transport: 'tcp', args: ['-T', '--rfc3164'], rfc5424: false },
  { name: 'TCP octet-counted, RFC 3164', transport: 'tcp', args: ['-T', '--octet-count', '--rfc3164'], rfc5424: false },
];

for (const v of variants) {
  test(`logger ${v.name} lands in the NDJSON with its fields parsed`, { skip }, async (t) => {
    const { logs, tcpPort, udpPort } = await startTestNode(t);
    const port = v.transport === 'tcp' ? tcpPort : udpPort;
    const extra = v.rfc5424 ? ['--msgid', 'ID47', '--sd-id', 'test@32473', '--sd-param', 'user="a \\"quoted\\" name"'] : [];
    const before = Date.now();
    send(['-n', '127.0.0.1', '-P', String(port), ...v.args, '-t', 'myapp', '-p', 'local4.err', '--id=4242', ...extra,
      `hello from logger: ${v.name} é`]);
    const [rec] = await waitFor('record', () => {
      const recs = readTenantRecords(logs, 'default');
      return recs.length > 0 ? recs : undefined;
    });
    assert.ok(rec);
    assert.equal(rec.tenant, 'default');
    assert.equal(rec.msg, `hello from logger: ${v.name} é`);
    assert.equal(rec.app, 'myapp');
    assert.equal(rec.procid, '4242');
    assert.equal(rec.facility, 20);
    assert.equal(rec.severity, 3);
    assert.equal(rec.parse_error, undefined);
    assert.equal(String(rec.hostname).toLowerCase(), hostname().split('.')[0]!.toLowerCase());
    assert.match(String(rec.host), /^[0-9a-f]{40}$/);
    assert.deepEqual(rec.source, { protocol: v.transport, address: '127.0.0.1', port: (rec.source as { port: number }).port });
    const ts = Date.parse(String(rec.ts));
    assert.ok(Math.abs(ts - before) < 5_000, `ts ${String(rec.ts)} is near the send time`);
    if (v.rfc5424) {
      assert.equal(rec.msgid, 'ID47');
      const sd = rec.sd as Record<string, Record<string, string>>;
      assert.equal(sd['test@32473']?.user, 'a "quoted" name');
    }
  });
}

test('logger over TCP: many messages on one connection arrive complete and in order', { skip }, async (t) => {
  const { logs, tcpPort } = await startTestNode(t);
  const lines = Array.from({ length: 500 }, (_, i) => `line ${i}`).join('\n') + '\n';
  execFileSync('logger', ['-n', '127.0.0.1', '-P', String(tcpPort), '-T', '--octet-count', '--rfc5424', '-t', 'bulk'],
    { input: lines, stdio: ['pipe', 'pipe', 'pipe'] });
  const recs = await waitFor('500 records', () => {
    const r = readTenantRecords(logs, 'default');
    return r.length >= 500 ? r : undefined;
  });
  assert.deepEqual(recs.map((r) => r.msg), Array.from({ length: 500 }, (_, i) => `line ${i}`));
});
