/**
 * The resolved configuration of the syslog listeners (UDP, TCP, TLS): every
 * default applied, durations in milliseconds, sizes in bytes.
 */
import type { ConnectionBounds } from '../connection-guard.js';
import type { HandshakeBounds } from './tls-handshakes.js';

export interface SyslogUdpSourceConfig {
  enabled: boolean;
  address: string;
  port: number;
  /** SO_RCVBUF in bytes; 0 keeps the operating system's default. */
  receiveBufferBytes: number;
  /** The ring between the reader thread and the event loop, in bytes. */
  handoffBufferBytes: number;
}

export interface SyslogTcpSourceConfig extends ConnectionBounds {
  enabled: boolean;
  address: string;
  port: number;
  /** A frame longer than this closes its connection. */
  maxFrameBytes: number;
}

export interface SyslogTlsSourceConfig extends ConnectionBounds, HandshakeBounds {
  /** True when a certificate and key are configured. */
  enabled: boolean;
  address: string;
  port: number;
  certificateFile: string | null;
  keyFile: string | null;
  clientCaFile: string | null;
  clientCertificates: 'none' | 'request' | 'require';
  maxFrameBytes: number;
}
