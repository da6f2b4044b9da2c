import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/ops/config/load.js';
import { descriptorsWanted, openFilesLimit, SPARE_DESCRIPTORS } from '../../src/ops/descriptors.js';

function config(yaml: string) {
  const { config, problems } = parseConfig(yaml);
  assert.deepEqual(problems, []);
  return config!;
}

test('descriptors: the capped connection listeners plus the spare; an uncapped one makes the limit itself the cap', () => {
  assert.equal(descriptorsWanted(config('')), 3 * 50_000 + SPARE_DESCRIPTORS, 'TCP, RELP and HTTP at their default caps; TLS is off without a certificate');
  const small = 'sources: { syslog_tcp: { max_connections: 2000 }, relp: { max_connections: 300 }, http: { max_connections: 40 } }';
  assert.equal(descriptorsWanted(config(small)), 2340 + SPARE_DESCRIPTORS);
  const tcpOnly = 'sources: { relp: { enabled: false }, http: { enabled: false } }';
  assert.equal(descriptorsWanted(config(tcpOnly)), 50_000 + SPARE_DESCRIPTORS);
  assert.equal(descriptorsWanted(config('sources: { syslog_tcp: { enabled: false }, relp: { enabled: false }, http: { enabled: false } }')), SPARE_DESCRIPTORS);
  assert.equal(descriptorsWanted(config('sources: { http: { max_connections: 0 } }')), null);
  const tls = config(`sources: { syslog_tcp: { max_connections: 100 }, syslog_tls: { certificate: c.pem, key: k.pem, max_connections: 300 },
    relp: { enabled: false }, http: { enabled: false } }`);
  assert.equal(descriptorsWanted(tls), 400 + SPARE_DESCRIPTORS);
});

test('descriptors: the open-files limit is read from /proc on Linux', { skip: process.platform !== 'linux' && 'Linux only' }, () => {
  const limit = openFilesLimit();
  assert.ok(limit !== null && Number.isInteger(limit) && limit > 0, String(limit));
});
