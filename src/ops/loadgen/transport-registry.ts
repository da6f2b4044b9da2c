/** The transport for each protocol (a new protocol is one more case). */
import type { Protocol } from './options.js';
import type { Transport, TransportTarget } from './transport.js';
import { RelpTransport } from './transport-relp.js';
import { SyslogTcpTransport } from './transport-tcp.js';
import { SyslogUdpTransport } from './transport-udp.js';

export function createTransport(protocol: Protocol, target: TransportTarget): Transport {
  switch (protocol) {
    case 'tcp':
      return new SyslogTcpTransport(target);
    case 'udp':
      return new SyslogUdpTransport(target);
    case 'relp':
      return new RelpTransport(target);
  }
}
