/**
 * Which configured network an address falls in: the most specific (longest
 * prefix) of those that contain it.
 *
 * Every stream connection, HTTP request and datagram peer is matched, so the
 * address is parsed once into 32-bit words and compared with each network's
 * words under its mask. node:net's BlockList built a native SocketAddress on
 * every check: some 30 µs a connection, 5 % of a worker's CPU while 10,000
 * agents connect at once (the W5 cold start's profile, docs/benchmarks.md).
 */
import { isIPv6 } from 'node:net';

/** The words of the address parsed last (one for IPv4, four for IPv6): reused, not allocated per address. */
const scratch = new Uint32Array(4);

/** Parse `address` into `out`; 4 or 6 (its family), or 0 when it is not an IP address. */
export function parseAddress(address: string, out: Uint32Array = scratch): 0 | 4 | 6 {
  if (parseIPv4(address, 0, address.length, out, 0)) return 4;
  return parseIPv6(address, out) ? 6 : 0;
}

/** Dotted quad in `text[from, to)` into `out[at]`. */
function parseIPv4(text: string, from: number, to: number, out: Uint32Array, at: number): boolean {
  let value = 0;
  let octet = -1;
  let dots = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c === 46) {
      if (octet < 0 || ++dots > 3) return false;
      value = value * 256 + octet;
      octet = -1;
    } else if (c >= 48 && c <= 57) {
      // No leading zeros (they read as octal elsewhere), at most 255.
      if (octet === 0) return false;
      octet = octet < 0 ? c - 48 : octet * 10 + (c - 48);
      if (octet > 255) return false;
    } else {
      return false;
    }
  }
  if (octet < 0 || dots !== 3) return false;
  out[at] = value * 256 + octet;
  return true;
}

/** An IPv6 address (with `::`, an IPv4 tail, a `%zone` ignored) into out[0..3]. */
function parseIPv6(address: string, out: Uint32Array): boolean {
  const zone = address.indexOf('%');
  const text = zone < 0 ? address : address.slice(0, zone);
  if (!isIPv6(text)) return false;
  const hextets = new Array<number>(8).fill(0);
  const halves = text.split('::');
  const head = halves[0] === '' ? [] : halves[0]!.split(':');
  const tail = halves.length > 1 && halves[1] !== '' ? halves[1]!.split(':') : [];
  const groups = (parts: string[]): number[] => {
    const values: number[] = [];
    for (const part of parts) {
      if (part.includes('.')) {
        const v4 = new Uint32Array(1);
        if (!parseIPv4(part, 0, part.length, v4, 0)) return [];
        values.push(v4[0]! >>> 16, v4[0]! & 0xffff);
      } else {
        values.push(parseInt(part, 16));
      }
    }
    return values;
  };
  const first = groups(head);
  const last = groups(tail);
  first.forEach((v, i) => { hextets[i] = v; });
  last.forEach((v, i) => { hextets[8 - last.length + i] = v; });
  for (let w = 0; w < 4; w++) out[w] = hextets[2 * w]! * 0x10000 + hextets[2 * w + 1]!;
  return true;
}

interface Network<T> {
  readonly family: 4 | 6;
  readonly words: Uint32Array;
  readonly prefix: number;
  readonly value: T;
}

/** Networks (CIDR) each naming a value; an address gets the value of the most specific network containing it. */
export class NetworkTable<T> {
  private readonly networks: Network<T>[] = [];

  /** `cidr`: an address, or an address and prefix length (`10.0.0.0/8`, `fd00::/8`). Throws if it is neither. */
  add(cidr: string, value: T): void {
    const slash = cidr.indexOf('/');
    const words = new Uint32Array(4);
    const family = parseAddress(slash < 0 ? cidr : cidr.slice(0, slash), words);
    if (family === 0) throw new Error(`not a network: ${cidr}`);
    const bits = family === 4 ? 32 : 128;
    const length = cidr.slice(slash + 1);
    const prefix = slash < 0 ? bits : /^\d{1,3}$/.test(length) ? Number(length) : -1;
    if (prefix < 0 || prefix > bits) throw new Error(`not a network: ${cidr}`);
    this.networks.push({ family, words, prefix, value });
    this.networks.sort((a, b) => b.prefix - a.prefix);
  }

  /** The value of the most specific network containing `address`, or null (also for what is not an address). */
  lookup(address: string): T | null {
    const family = parseAddress(address);
    if (family === 0) return null;
    for (const network of this.networks) {
      if (network.family === family && contains(network, scratch)) return network.value;
    }
    return null;
  }
}

function contains(network: Network<unknown>, words: Uint32Array): boolean {
  let bits = network.prefix;
  for (let w = 0; bits > 0; w++, bits -= 32) {
    const mask = bits >= 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
    if (((network.words[w]! ^ words[w]!) & mask) !== 0) return false;
  }
  return true;
}

