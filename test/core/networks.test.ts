import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BlockList } from 'node:net';
import fc from 'fast-check';
import { NetworkTable, parseAddress } from '../../src/core/networks.js';

test('networks: the most specific network containing the address wins; IPv4 and IPv6 apart', () => {
  const table = new NetworkTable<string>();
  table.add('10.0.0.0/8', 'ten');
  table.add('10.1.0.0/16', 'ten-one');
  table.add('10.1.2.3', 'host');
  table.add('0.0.0.0/0', 'any-v4');
  table.add('fd00::/8', 'ula');
  table.add('fd00:1::/32', 'ula-one');
  table.add('::1', 'loopback6');
  assert.equal(table.lookup('10.9.9.9'), 'ten');
  assert.equal(table.lookup('10.1.9.9'), 'ten-one');
  assert.equal(table.lookup('10.1.2.3'), 'host');
  assert.equal(table.lookup('192.0.2.1'), 'any-v4');
  assert.equal(table.lookup('fd00:1:2::3'), 'ula-one');
  assert.equal(table.lookup('fdff::1'), 'ula');
  assert.equal(table.lookup('::1'), 'loopback6');
  assert.equal(table.lookup('fe80::1%eth0'), null, 'a zone is ignored; no IPv6 network contains it');
  assert.equal(table.lookup('2001:db8::10.1.2.3'), null, 'an IPv4 tail of an IPv6 address is not an IPv4 address');
});

test('networks: what is not an address matches nothing; what is not a network is refused', () => {
  const table = new NetworkTable<string>();
  table.add('0.0.0.0/0', 'any-v4');
  table.add('::/0', 'any-v6');
  for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1..2.3', 'a.b.c.d', '10.0.0.1 ', 'host.example', ':::', '1::2::3', 'g::1']) {
    assert.equal(table.lookup(bad), null, JSON.stringify(bad));
  }
  for (const bad of ['10.0.0.0/33', '::/129', '10.0.0.0/-1', '10.0.0.0/8.5', '10.0.0/8', 'example.com/8', '10.0.0.0/']) {
    assert.throws(() => table.add(bad, 'x'), /not a network/, bad);
  }
  const words = new Uint32Array(4);
  assert.equal(parseAddress('::ffff:192.0.2.1', words), 6);
  assert.deepEqual([...words], [0, 0, 0xffff, 0xc0000201]);
  assert.equal(parseAddress('192.0.2.1', words), 4);
  assert.equal(words[0], 0xc0000201);
});

test('networks: the same answers as node:net\'s BlockList for any address and network (fast-check)', () => {
  const network = fc.oneof(
    fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 32 })).map(([address, prefix]) => ({ address, prefix, family: 'ipv4' as const })),
    fc.tuple(fc.ipV6(), fc.integer({ min: 0, max: 128 })).map(([address, prefix]) => ({ address, prefix, family: 'ipv6' as const })),
  );
  // Addresses near the networks' too, so containment is not almost always false.
  const address = fc.oneof(fc.ipV4(), fc.ipV6(), fc.constantFrom('10.0.0.1', '10.255.255.255', '::1', 'fd00::1', '0.0.0.0', '255.255.255.255'));
  fc.assert(fc.property(fc.array(network, { minLength: 1, maxLength: 4 }), fc.array(address, { minLength: 1, maxLength: 8 }), (networks, addresses) => {
    const table = new NetworkTable<number>();
    networks.forEach((n, i) => table.add(`${n.address}/${n.prefix}`, i));
    for (const a of addresses) {
      const family = a.includes(':') ? 'ipv6' : 'ipv4';
      const expected = networks
        .map((n, i) => ({ i, n, hit: n.family === family && blockOf(n).check(a, family) }))
        .filter((x) => x.hit)
        .sort((x, y) => y.n.prefix - x.n.prefix || x.i - y.i)[0];
      const got = table.lookup(a);
      if (expected === undefined) assert.equal(got, null, a);
      else assert.equal(networks[got!]!.prefix, expected.n.prefix, `${a}: a network as specific as the most specific containing it`);
    }
  }), { numRuns: 2000 });
});

function blockOf(n: { address: string; prefix: number; family: 'ipv4' | 'ipv6' }): BlockList {
  const list = new BlockList();
  list.addSubnet(n.address, n.prefix, n.family);
  return list;
}
