/**
 * What the kernel dropped before sluice could read it (Linux): the `drops`
 * column of the listener's own line in /proc/net/udp (or udp6), and the
 * host-wide UDP receive errors of /proc/net/snmp and /proc/net/snmp6. Read
 * at scrape time only; elsewhere (no /proc) every answer is null.
 */
import { readFileSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { endianness } from 'node:os';

/** The bytes of an IPv4 or IPv6 literal, or null. */
function addressBytes(address: string): Buffer | null {
  if (isIPv4(address)) return Buffer.from(address.split('.').map(Number));
  if (!isIPv6(address)) return null;
  const zone = address.indexOf('%');
  let text = zone >= 0 ? address.slice(0, zone) : address;
  const out = Buffer.alloc(16);
  // A dotted IPv4 tail (::ffff:1.2.3.4) becomes its two groups.
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (isIPv4(tail)) {
    const b = tail.split('.').map(Number);
    text = `${text.slice(0, lastColon + 1)}${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const groups = (s: string | undefined): number[] => (s === undefined || s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const front = groups(head);
  const back = groups(rest);
  const all = rest === undefined ? front : [...front, ...new Array<number>(8 - front.length - back.length).fill(0), ...back];
  all.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}

/** An address as /proc/net/udp{,6} prints it: each 32-bit word in the host's byte order, in hex. */
export function procAddress(address: string): string | null {
  const bytes = addressBytes(address);
  if (bytes === null) return null;
  let hex = '';
  for (let i = 0; i < bytes.length; i += 4) {
    const word = endianness() === 'LE' ? bytes.readUInt32LE(i) : bytes.readUInt32BE(i);
    hex += word.toString(16).toUpperCase().padStart(8, '0');
  }
  return hex;
}

function readProc(file: string): string | null {
  try {
    return readFileSync(file, 'latin1');
  } catch {
    return null;
  }
}

/** One socket's line of /proc/net/udp{,6}. */
export interface UdpSocketCounters {
  /** Datagrams the kernel dropped for this socket (its receive buffer was full, or memory ran short). */
  drops: number;
  /** Bytes waiting in its receive buffer (`rx_queue`). */
  receiveQueueBytes: number;
}

/** The counters of the socket bound to `address`:`port`, or null when there is no such line (or no /proc). */
export function udpSocketCounters(address: string, port: number, procRoot = '/proc'): UdpSocketCounters | null {
  const hex = procAddress(address);
  if (hex === null) return null;
  const text = readProc(`${procRoot}/net/${hex.length === 8 ? 'udp' : 'udp6'}`);
  if (text === null) return null;
  const local = `${hex}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ref pointer drops
    if (fields[1] === local && fields.length >= 13) {
      return { drops: Number(fields[12]), receiveQueueBytes: parseInt(fields[4]!.split(':')[1] ?? '0', 16) };
    }
  }
  return null;
}

/** Host-wide UDP receive errors (IPv4 and IPv6 added up): RcvbufErrors (buffer full) and InErrors (every failed receive). */
export interface UdpReceiveErrors {
  rcvbufErrors: number;
  inErrors: number;
}

export function udpReceiveErrors(procRoot = '/proc'): UdpReceiveErrors | null {
  const snmp = readProc(`${procRoot}/net/snmp`);
  if (snmp === null) return null;
  const out: UdpReceiveErrors = { rcvbufErrors: 0, inErrors: 0 };
  // Two `Udp:` lines: the names, then the values.
  const lines = snmp.split('\n').filter((l) => l.startsWith('Udp: '));
  if (lines.length >= 2) {
    const names = lines[0]!.split(/\s+/);
    const values = lines[1]!.split(/\s+/);
    out.rcvbufErrors += Number(values[names.indexOf('RcvbufErrors')] ?? 0);
    out.inErrors += Number(values[names.indexOf('InErrors')] ?? 0);
  }
  // snmp6: one `Name value` per line.
  for (const line of (readProc(`${procRoot}/net/snmp6`) ?? '').split('\n')) {
    const [name, value] = line.split(/\s+/);
    if (name === 'Udp6RcvbufErrors') out.rcvbufErrors += Number(value);
    else if (name === 'Udp6InErrors') out.inErrors += Number(value);
  }
  return out;
}
