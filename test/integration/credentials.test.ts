/**
 * Tenant credentials over the wire: tokens in syslog SD elements (TCP and
 * UDP), client certificates over TLS, and the refusals of everything else.
 * A record must never land in a tenant other than the one its credentials name.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { hostKey } from '../../src/core/identity.js';
import { closed, connect, lateBoundPort, readTenantRecords, requireProgram, startTestNode, tempDir, waitFor } from '../helpers.js';
import { makePki, type Pem } from '../certs.js';

const TOKEN_ACME = 'acme-0123456789abcdef';
const TOKEN_GLOBEX = 'globex-0123456789abcdef';
const frame = (msg: string): string => `${Buffer.byteLength(msg)} ${msg}`;
const tokenSd = (token: string): string => `[sluice@32473 token="${token}"]`;

const tenantsYaml = [
  'tenants:',
  '  acme:',
  `    tokens: [${TOKEN_ACME}]`,
  '    certificates: [{cn: "*.acme.example"}]',
  '  globex:',
  `    tokens: [${TOKEN_GLOBEX}]`,
  '    networks: [127.0.0.1/32]',
  '    certificates: [{san: "*.globex.example"}]',
].join('\n');

test('tokens: each record lands in the tenant its token names, from any network; bad ones are refused and counted', async (t) => {
  const { node, logs, tcpPort, udpPort } = await startTestNode(t, tenantsYaml);
  // From 127.0.0.2: no tenant owns that network, so only tokens count.
  const socket = await connect(tcpPort, '127.0.0.2');
  socket.write(frame(`<13>1 - web-1 app - - ${tokenSd(TOKEN_ACME)} acme record`));
  socket.write(frame(`<13>1 - web-1 app - - ${tokenSd(TOKEN_GLOBEX)} globex record, same hostname`));
  socket.write(frame(`<13>1 - web-1 app - - ${tokenSd('wrong-token-0000000000')} wrong token`));
  socket.write(frame(`<13>1 - web-1 app - - [sluice@32473 token="${TOKEN_ACME}" token="${TOKEN_GLOBEX}"] two tokens`));
  socket.end(frame(`<13>1 - web-1 app - - ${tokenSd(TOKEN_ACME)} acme again`));
  await closed(socket);
  const udp = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => udp.bind(0, '127.0.0.3', () => resolve()));
  await new Promise<void>((resolve) => udp.send(`<13>1 - db-1 app - - ${tokenSd(TOKEN_ACME)} over udp`, udpPort, '127.0.0.1', () => resolve()));
  await new Promise<void>((resolve) => udp.send('<13>1 - db-1 app - - - no token over udp', udpPort, '127.0.0.1', () => resolve()));
  udp.close();

  await waitFor('acme and globex records', () => readTenantRecords(logs, 'acme').length === 3 && readTenantRecords(logs, 'globex').length === 1);
  await waitFor('refusals counted', async () => (await node.telemetry.value('sluice_source_refused_total')) === 3);
  const acme = readTenantRecords(logs, 'acme');
  const globex = readTenantRecords(logs, 'globex');
  assert.deepEqual(acme.map((r) => r.msg).sort(), ['acme again', 'acme record', 'over udp']);
  assert.deepEqual(globex.map((r) => r.msg), ['globex record, same hostname']);
  assert.equal(acme.find((r) => r.msg === 'acme record')?.host, hostKey('acme', 'web-1'));
  assert.equal(globex[0]?.host, hostKey('globex', 'web-1'));
  for (const rec of [...acme, ...globex]) {
    assert.equal(rec.sd, null, 'the token element is removed before storage');
    assert.equal(JSON.stringify(rec).includes('0123456789abcdef'), false);
  }
  const refused = async (source: string, reason: string) => node.telemetry.value('sluice_source_refused_total', { source, reason });
  assert.equal(await refused('syslog_tcp', 'bad_token'), 1);
  assert.equal(await refused('syslog_tcp', 'ambiguous_credentials'), 1);
  assert.equal(await refused('syslog_udp', 'no_credentials'), 1);
});

test('tokens: a connection that names no tenant at all is closed at its first record', async (t) => {
  const { node, logs, tcpPort } = await startTestNode(t, tenantsYaml);
  const socket = await connect(tcpPort, '127.0.0.2');
  socket.write(frame('<13>1 - h app - - - no credentials'));
  await closed(socket);
  assert.equal(await node.telemetry.value('sluice_source_refused_total', { reason: 'no_credentials' }), 1);
  // The network tenant still works for 127.0.0.1.
  const friend = await connect(tcpPort, '127.0.0.1');
  friend.end(frame('<13>1 - h app - - - from the network'));
  await waitFor('globex record', () => readTenantRecords(logs, 'globex').length === 1);
  assert.deepEqual(readTenantRecords(logs, 'acme'), []);
});

interface TlsNode {
  logs: string;
  port: number;
  node: Awaited<ReturnType<typeof startTestNode>>['node'];
  ca: Pem;
  client(name: string, cn: string, san?: string[]): Pem;
  rogue: Pem;
}

async function startTlsNode(t: Parameters<typeof startTestNode>[0], mode: 'require' | 'request'): Promise<TlsNode> {
  const dir = tempDir(t);
  const pki = makePki(dir);
  const yaml = [
    'sources:',
    '  syslog_udp: { enabled: false }',
    '  syslog_tcp: { enabled: false }',
    '  syslog_tls:',
    '    port: 0',
    `    certificate: ${pki.server.cert}`,
    `    key: ${pki.server.key}`,
    `    client_ca: ${pki.ca.cert}`,
    `    client_certificates: ${mode}`,
    tenantsYaml,
  ].join('\n');
  const started = await startTestNode(t, yaml, dir);
  return {
    logs: started.logs, port: started.node.addresses().syslogTls!.port, node: started.node, ca: pki.ca,
    client: pki.client, rogue: pki.rogueClient('rogue', 'web-1.acme.example'),
  };
}

function tlsConnect(port: number, ca: Pem, client?: Pem): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: '127.0.0.1', port, servername: 'localhost', ca: readFileSync(ca.cert),
      ...(client ? { cert: readFileSync(client.cert), key: readFileSync(client.key) } : {}),
    }, () => resolve(socket));
    socket.once('error', reject);
  });
}

test('tls: a client certificate names tenant and host; the hostname field cannot override it', async (t) => {
  const tn = await startTlsNode(t, 'require');
  const acmeCert = tn.client('acme-web', 'web-1.acme.example');
  const globexCert = tn.client('globex-api', 'ignored-cn', ['DNS:api.globex.example']);
  const a = await tlsConnect(tn.port, tn.ca, acmeCert);
  a.end(frame('<13>1 - pretends-to-be-someone-else app - - - over mTLS'));
  const g = await tlsConnect(tn.port, tn.ca, globexCert);
  g.end(frame('<13>1 - x app - - - globex over mTLS'));
  await waitFor('records', () => readTenantRecords(tn.logs, 'acme').length === 1 && readTenantRecords(tn.logs, 'globex').length === 1);
  const [acme] = readTenantRecords(tn.logs, 'acme');
  assert.equal(acme?.host, hostKey('acme', 'web-1.acme.example'));
  assert.equal((acme?.source as { protocol: string }).protocol, 'tls');
  assert.equal(readTenantRecords(tn.logs, 'globex')[0]?.host, hostKey('globex', 'api.globex.example'));
});

test('tls: no certificate, a certificate of another CA, or one no tenant claims: refused and counted', async (t) => {
  const tn = await startTlsNode(t, 'require');
  const cases: [Pem | undefined, string][] = [
    [undefined, 'no_certificate'],
    [tn.rogue, 'bad_certificate'],
    [tn.client('stranger', 'web-1.initech.example'), 'unknown_certificate'],
  ];
  for (const [cert, reason] of cases) {
    const socket = await tlsConnect(tn.port, tn.ca, cert).catch(() => null);
    if (socket) {
      socket.write(frame('<13>1 - h app - - - must not land'));
      await closed(socket);
    }
    await waitFor(reason, async () => (await tn.node.telemetry.value('sluice_source_refused_total', { source: 'syslog_tls', reason })) === 1);
  }
  assert.deepEqual(readTenantRecords(tn.logs, 'acme'), []);
  assert.deepEqual(readTenantRecords(tn.logs, 'globex'), []);
});

test('tls: with client certificates requested, a client without one is identified by network or token', async (t) => {
  const tn = await startTlsNode(t, 'request');
  const socket = await tlsConnect(tn.port, tn.ca);
  socket.write(frame('<13>1 - h app - - - by network'));
  socket.end(frame(`<13>1 - h app - - ${tokenSd(TOKEN_ACME)} by token`));
  await waitFor('records', () => readTenantRecords(tn.logs, 'globex').length === 1 && readTenantRecords(tn.logs, 'acme').length === 1);
  assert.equal(readTenantRecords(tn.logs, 'acme')[0]?.msg, 'by token');
});

const noRsyslog = requireProgram('rsyslogd', 'Debian packages rsyslog and rsyslog-gnutls');

test('tls: the real rsyslog forwards over mTLS (gtls, octet-counted) into its tenant', { skip: noRsyslog }, async (t) => {
  const { spawn, execFileSync } = await import('node:child_process');
  const { writeFileSync, existsSync } = await import('node:fs');
  const path = await import('node:path');
  const tn = await startTlsNode(t, 'require');
  const dir = tempDir(t);
  const cert = tn.client('rsyslog-client', 'rsyslog-host.acme.example');
  const inputPort = await lateBoundPort('udp');
  const conf = path.join(dir, 'rsyslog.conf');
  writeFileSync(conf, `
global(workDirectory="${dir}"
  DefaultNetstreamDriverCAFile="${tn.ca.cert}"
  DefaultNetstreamDriverCertFile="${cert.cert}"
  DefaultNetstreamDriverKeyFile="${cert.key}")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="${inputPort}")
action(type="omfwd" target="127.0.0.1" port="${tn.port}" protocol="tcp" TCP_Framing="octet-counted"
  StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/name" StreamDriverPermittedPeers="localhost"
  template="RSYSLOG_SyslogProtocol23Format")
`);
  const gtls = ['/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so', '/usr/lib/rsyslog/lmnsd_gtls.so'].some((p) => existsSync(p));
  if (!gtls) {
    if (process.env.CI === 'true') throw new Error('rsyslog-gnutls is required under CI=true');
    t.skip('rsyslog-gnutls not installed');
    return;
  }
  const rsyslog = spawn('rsyslogd', ['-n', '-f', conf, '-i', path.join(dir, 'rsyslog.pid')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  rsyslog.stdout.on('data', (d: Buffer) => { output += d.toString(); });
  rsyslog.stderr.on('data', (d: Buffer) => { output += d.toString(); });
  t.after(() => { rsyslog.kill('SIGKILL'); });
  const count = 50;
  // rsyslog needs a moment to open its input; resend until the first record shows up.
  await waitFor('rsyslog forwarding', () => {
    execFileSync('logger', ['-n', '127.0.0.1', '-P', String(inputPort), '-d', '--rfc5424', '-t', 'probe', 'warming up']);
    return readTenantRecords(tn.logs, 'acme').length > 0;
  }, 20_000).catch((err: Error) => { throw new Error(`${err.message}; rsyslog said: ${output}`); });
  for (let i = 0; i < count; i++) {
    execFileSync('logger', ['-n', '127.0.0.1', '-P', String(inputPort), '-d', '--rfc5424', '-t', 'viarsyslog', `numbered ${i}`]);
  }
  const numbered = await waitFor('all numbered records', () => {
    const recs = readTenantRecords(tn.logs, 'acme').filter((r) => String(r.msg).startsWith('numbered'));
    return recs.length >= count ? recs : undefined;
  }, 20_000);
  assert.deepEqual(new Set(numbered.map((r) => r.msg)).size, count);
  for (const rec of numbered) {
    assert.equal(rec.app, 'viarsyslog');
    assert.equal(rec.host, hostKey('acme', 'rsyslog-host.acme.example'));
    assert.equal((rec.source as { protocol: string }).protocol, 'tls');
  }
  assert.deepEqual(readTenantRecords(tn.logs, 'globex'), []);
});
