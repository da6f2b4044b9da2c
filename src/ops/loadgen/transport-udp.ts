/**
 * Syslog over UDP (RFC 5426): one socket per agent, bound to the agent's
 * source address and connected to the node, one message per datagram. A
 * connected socket is what lets the kernel report a refused port (ICMP) as
 * ECONNREFUSED on a later send; that is counted, and the socket kept.
 */
import dgram from 'node:dgram';
import { monotonicMicros } from './clock.js';
import {
  classifyError,
  type AgentConnection, type ConnectionListener, type OutgoingMessage, type Transport, type TransportTarget,
} from './transport.js';

/** How long a closing socket may take to send what it was given. */
const CLOSE_GRACE_MS = 1000;
const CLOSE_POLL_MS = 10;

export class SyslogUdpTransport implements Transport {
  readonly protocol = 'udp' as const;
  readonly acknowledged = false;

  constructor(private readonly target: TransportTarget) {}

  open(localAddress: string, listener: ConnectionListener): AgentConnection {
    return new UdpConnection(this.target, localAddress, listener);
  }
}

class UdpConnection implements AgentConnection {
  private readonly socket = dgram.createSocket({ type: 'udp4' });
  private readonly openedAt = monotonicMicros();
  /** Messages sent before bind and connect completed, in order. */
  private waiting: string[] | null = [];
  private established = false;
  /** The agent closed it, or it failed: the listener hears nothing more. */
  private finished = false;
  private socketClosed = false;

  constructor(target: TransportTarget, localAddress: string, private readonly listener: ConnectionListener) {
    this.socket.on('error', this.onError);
    this.socket.bind({ address: localAddress, port: 0 }, () => {
      if (this.finished) return;
      this.socket.connect(target.port, target.host, this.onConnect);
    });
  }

  get pendingBytes(): number {
    return this.established && !this.socketClosed ? this.socket.getSendQueueSize() : 0;
  }

  /** Nothing is acknowledged over plain syslog. */
  readonly unacknowledged = 0;

  send(batch: readonly OutgoingMessage[]): void {
    if (this.finished) return;
    if (this.waiting !== null) {
      for (const message of batch) this.waiting.push(message.text);
      return;
    }
    // No callback: a failed send surfaces as an 'error' event, counted once.
    for (const message of batch) this.socket.send(message.text);
  }

  /** Closes once the datagrams handed over have left (libuv queues them when the kernel buffer is full). */
  close(): void {
    const deadline = Date.now() + CLOSE_GRACE_MS;
    this.finished = true;
    const closeWhenSent = (): void => {
      if (this.socketClosed) return;
      if (!this.established || this.socket.getSendQueueCount() === 0 || Date.now() >= deadline) this.destroy();
      else setTimeout(closeWhenSent, CLOSE_POLL_MS);
    };
    closeWhenSent();
  }

  destroy(): void {
    this.finished = true;
    this.waiting = null;
    if (this.socketClosed) return;
    this.socketClosed = true;
    this.socket.close();
  }

  private readonly onConnect = (): void => {
    if (this.finished) return;
    this.established = true;
    const waiting = this.waiting ?? [];
    this.waiting = null;
    this.listener.connected(monotonicMicros() - this.openedAt);
    for (const text of waiting) this.socket.send(text);
  };

  private readonly onError = (err: NodeJS.ErrnoException): void => {
    if (this.finished) return;
    const code = err.code ?? 'EUNKNOWN';
    if (this.established) {
      this.listener.failed(classifyError(code, true), code, false);
      return;
    }
    this.listener.failed(classifyError(code, false), code, true);
    this.destroy();
  };
}
