import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { HostKeyCache, TenantDirectory, hostKey } from '../../src/core/identity.js';

const zeroConfig = new TenantDirectory([{ id: 'default', networks: ['127.0.0.0/8', '::1/128'], tokenHashes: [], certificates: [] }]);

test('identity: the zero-config default tenant accepts loopback only', () => {
  for (const address of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) {
    assert.equal(zeroConfig.byAddress(address)?.id, 'default', address);
  }
  for (const address of ['10.1.2.3', '192.168.0.1', '8.8.8.8', '::2', 'fe80::1', '::ffff:10.0.0.1']) {
    assert.equal(zeroConfig.byAddress(address), null, address);
  }
});

test('identity: overlapping networks resolve to the longest prefix', () => {
  const directory = new TenantDirectory([
    { id: 'wide', networks: ['10.0.0.0/8'], tokenHashes: [], certificates: [] },
    { id: 'narrow', networks: ['10.1.0.0/16', '10.9.9.9'], tokenHashes: [], certificates: [] },
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
