import { test } from 'node:test';
import { UNLIMITED as NO_LIMITS } from '../../src/core/limits.js';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { HostKeyCache, TenantDirectory, hostKey } from '../../src/core/identity.js';

const zeroConfig = new TenantDirectory([{ id: 'default', networks: ['127.0.0.0/8', '::1/128'], tokenHashes: [], certificates: [], limits: NO_LIMITS }]);

test('identity: the zero-config default tenant accepts loopback only', () => {
  for (const address of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) {
    assert.equal(zeroConfig.byAddress(address)?.id, 'default', address);
  }
  for (const address of ['10.1.2.3', '192.168.0.1', '8.8.8.8', '::2', 'fe80::1', '::ffff:10.0.0.1']) {
    assert.equal(zeroConfig.byAddress(address), null, address);
  }
});

test('identity: a network written as an IPv4-mapped address is the IPv4 one, whichever way a peer appears', () => {
  const directory = new TenantDirectory([{ id: 'mapped', networks: ['::ffff:10.0.0.1'], tokenHashes: [], certificates: [], limits: NO_LIMITS }]);
  assert.equal(directory.byAddress('10.0.0.1')?.id, 'mapped');
  assert.equal(directory.byAddress('::ffff:10.0.0.1')?.id, 'mapped');
  assert.equal(directory.byAddress('10.0.0.2'), null);
});

test('identity: overlapping networks resolve to the longest prefix', () => {
  const directory = new TenantDirectory([
    { id: 'wide', networks: ['10.0.0.0/8'], tokenHashes: [], certificates: [], limits: NO_LIMITS },
    { id: 'narrow', networks: ['10.1.0.0/16', '10.9.9.9'], tokenHashes: [], certificates: [], limits: NO_LIMITS },
  ]);
  assert.equal(directory.byAddress('10.1.2.3')?.id, 'narrow');
  assert.equal(directory.byAddress('10.9.9.9')?.id, 'narrow');
  assert.equal(directory.byAddress('10.2.0.1')?.id, 'wide');
  assert.equal(directory.byAddress('11.0.0.1'), null);
});

test('identity: host key is 40 lowercase hex, stable, tenant-scoped and case-insensitive', () => {
  const key = hostKey('acme', 'web-1');
  assert.match(key, /^[0-9a-f]{40}$/);
  assert.equal(key, createHash('sha1').update('acme\nweb-1').digest('hex'));
  assert.notEqual(hostKey('other', 'web-1'), key);
  const cache = new HostKeyCache('acme', 2);
  assert.equal(cache.get('WEB-1'), key);
  assert.equal(cache.get('web-1'), key);
  cache.get('a');
  cache.get('b'); // past capacity: cleared, still correct
  assert.equal(cache.get('web-1'), key);
});

import { LogRecord } from '../../src/core/record.js';
import { parseSyslog } from '../../src/sources/syslog/parse.js';
import { SessionIdentity } from '../../src/core/identity.js';
import { tokenHash } from '../../src/core/tenant-config.js';

const TOKEN_A = 'token-of-tenant-a-0123456789';
const TOKEN_B = 'token-of-tenant-b-0123456789';
const credentials = new TenantDirectory([
  { id: 'a', networks: [], tokenHashes: [tokenHash(TOKEN_A)], certificates: [{ field: 'cn', pattern: '*.a.example' }], limits: NO_LIMITS },
  { id: 'b', networks: ['10.2.0.0/16'], tokenHashes: [tokenHash(TOKEN_B)], certificates: [{ field: 'san', pattern: 'web-*.b.example' }], limits: NO_LIMITS },
]);

function parsed(text: string): LogRecord {
  const rec = new LogRecord();
  rec.received = '2026-11-27T00:00:00.000Z';
  parseSyslog(text, rec, Date.parse(rec.received));
  return rec;
}

function attribute(identity: SessionIdentity, text: string): { tenant: string | null; rec: LogRecord; refusal: string } {
  const rec = parsed(text);
  const tenant = identity.attribute(rec, '10.2.3.4');
  return { tenant: tenant?.id ?? null, rec, refusal: identity.refusal };
}

test('attribution: a token names its tenant, wherever the record comes from; the token element is removed', () => {
  const fromB = new SessionIdentity(credentials, credentials.byAddress('10.2.3.4'), null);
  const { tenant, rec } = attribute(fromB, `<13>1 - web-1 app - - [sluice@32473 token="${TOKEN_A}"][x@1 k="v"] hello`);
  assert.equal(tenant, 'a');
  assert.equal(rec.tenant, 'a');
  assert.deepEqual(rec.sd, { 'x@1': { k: 'v' } });
  assert.equal(JSON.stringify(rec).includes(TOKEN_A), false, 'the token is never stored');
  const only = attribute(fromB, `<13>1 - web-1 app - - [sluice@32473 token="${TOKEN_A}"] hello`);
  assert.equal(only.rec.sd, null);
  // Without a token, the network's tenant.
  assert.equal(attribute(fromB, '<13>1 - web-1 app - - - hello').tenant, 'b');
});

test('attribution: a token of A with the hostname of a host of B is a host of A, with its own key', () => {
  const fromB = new SessionIdentity(credentials, credentials.byAddress('10.2.3.4'), null);
  const asB = attribute(fromB, '<13>1 - web-1 app - - - hello');
  const spoof = attribute(fromB, `<13>1 - web-1 app - - [sluice@32473 token="${TOKEN_A}"] hello`);
  assert.equal(spoof.tenant, 'a');
  assert.equal(spoof.rec.host, hostKey('a', 'web-1'));
  assert.notEqual(spoof.rec.host, asB.rec.host);
});

test('attribution: tokens in the message body are text, never credentials', () => {
  const anonymous = new SessionIdentity(credentials, null, null);
  const in5424 = attribute(anonymous, `<13>1 - h app - - - [sluice@32473 token="${TOKEN_A}"] in the body`);
  assert.equal(in5424.tenant, null);
  assert.equal(in5424.refusal, 'no_credentials');
  const in3164 = attribute(anonymous, `<13>Oct 11 22:14:15 h app: [sluice@32473 token="${TOKEN_A}"]`);
  assert.equal(in3164.tenant, null);
  const fromB = new SessionIdentity(credentials, credentials.byAddress('10.2.3.4'), null);
  const bodyOnB = attribute(fromB, `<13>1 - h app - - - [sluice@32473 token="${TOKEN_A}"] body`);
  assert.equal(bodyOnB.tenant, 'b', 'the network tenant, not the one the body names');
  assert.match(bodyOnB.rec.msg, /token=/);
});

test('attribution: two tokens, an unknown token or an element without a token is refused, never guessed', () => {
  const fromB = new SessionIdentity(credentials, credentials.byAddress('10.2.3.4'), null);
  const two = attribute(fromB, `<13>1 - h app - - [sluice@32473 token="${TOKEN_A}" token="${TOKEN_B}"] x`);
  assert.deepEqual([two.tenant, two.refusal], [null, 'ambiguous_credentials']);
  const twoElements = attribute(fromB, `<13>1 - h app - - [sluice@32473 token="${TOKEN_A}"][sluice@32473 token="${TOKEN_A}"] x`);
  assert.deepEqual([twoElements.tenant, twoElements.refusal], [null, 'ambiguous_credentials']);
  const wrong = attribute(fromB, '<13>1 - h app - - [sluice@32473 token="not-a-real-token-000000"] x');
  assert.deepEqual([wrong.tenant, wrong.refusal], [null, 'bad_token'], 'no fallback to the network tenant');
  const empty = attribute(fromB, '<13>1 - h app - - [sluice@32473 other="1"] x');
  assert.deepEqual([empty.tenant, empty.refusal], [null, 'bad_token']);
});

test('attribution: a certificate binds tenant and host; a token of another tenant conflicts', () => {
  const owner = credentials.byCertificate({ cn: 'db-1.a.example', dnsNames: [] });
  assert.deepEqual([owner?.tenant.id, owner?.hostIdentity], ['a', 'db-1.a.example']);
  assert.equal(credentials.byCertificate({ cn: 'db-1.a.example.evil', dnsNames: [] }), null);
  assert.equal(credentials.byCertificate({ cn: 'x', dnsNames: ['api.b.example', 'web-7.b.example'] })?.hostIdentity, 'web-7.b.example');
  const certified = new SessionIdentity(credentials, owner!.tenant, owner!.hostIdentity);
  const plain = attribute(certified, '<13>1 - claims-another-name app - - - hi');
  assert.equal(plain.tenant, 'a');
  assert.equal(plain.rec.host, hostKey('a', 'db-1.a.example'), 'the certificate, not the hostname field, is the host');
  const conflict = attribute(certified, `<13>1 - h app - - [sluice@32473 token="${TOKEN_B}"] x`);
  assert.deepEqual([conflict.tenant, conflict.refusal], [null, 'credential_conflict']);
  const same = attribute(certified, `<13>1 - h app - - [sluice@32473 token="${TOKEN_A}"] x`);
  assert.equal(same.tenant, 'a');
});
