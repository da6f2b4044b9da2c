import { test } from 'node:test';
import assert from 'node:assert/strict';
import { answerOpen, parseOffers, SERVER_RELP_VERSION } from '../../../src/sources/relp/offers.js';

/** What rsyslog 8.2302 (librelp 1.11) sends in its `open`. */
const LIBRELP_OFFERS = 'relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog';

test('relp offers: librelp\'s offers parse', () => {
  assert.deepEqual(parseOffers(LIBRELP_OFFERS), {
    relpVersion: 0, commands: ['syslog'], software: 'librelp,1.11.0,http://librelp.adiscon.com',
  });
});

test('relp offers: the answer speaks the client\'s version when it is lower, and offers syslog', () => {
  const answer = answerOpen(LIBRELP_OFFERS);
  assert.equal(answer.accepted, true);
  const [status, ...offers] = answer.response.split('\n');
  assert.equal(status, '200 OK');
  assert.ok(offers.includes('relp_version=0'), answer.response);
  assert.ok(offers.includes('commands=syslog'), answer.response);
  assert.ok(offers.some((o) => o.startsWith('relp_software=sluice,')), answer.response);
});

test('relp offers: a newer client is answered with our highest version', () => {
  const answer = answerOpen('relp_version=7\ncommands=syslog,eventlog');
  assert.equal(answer.accepted, true);
  assert.ok(answer.response.split('\n').includes(`relp_version=${SERVER_RELP_VERSION}`));
});

test('relp offers: unknown offers are ignored', () => {
  assert.equal(answerOpen('relp_version=0\nrelp_zip=1\ncommands=syslog\n').accepted, true);
});

test('relp offers: no relp_version, or not a number, is refused with 500', () => {
  for (const offers of ['commands=syslog', 'relp_version\ncommands=syslog', 'relp_version=x1\ncommands=syslog', '']) {
    const answer = answerOpen(offers);
    assert.equal(answer.accepted, false, offers);
    assert.equal(answer.accepted === false && answer.refusal, 'no_relp_version');
    assert.match(answer.response, /^500 /);
  }
});

test('relp offers: a client that does not offer syslog is refused with 500', () => {
  for (const offers of ['relp_version=0', 'relp_version=0\ncommands=eventlog', 'relp_version=0\ncommands=syslogx']) {
    const answer = answerOpen(offers);
    assert.equal(answer.accepted === false && answer.refusal, 'no_syslog_command', offers);
    assert.match(answer.response, /^500 /);
  }
});

test('relp offers: an offer of 400,000 commands (a 1 MiB frame allows it) is read, not a stack overflow', () => {
  const offers = parseOffers(`relp_version=0\ncommands=${'a,'.repeat(400_000)}syslog`);
  assert.equal(offers.commands.length, 400_001);
  assert.equal(answerOpen(`relp_version=0\ncommands=${'a,'.repeat(400_000)}syslog`).accepted, true);
});
