/**
 * Syslog over TCP with RFC 6587 octet counting (`<length> <message>`), one
 * connection per agent, bound to the agent's source address.
 */
import net from 'node:net';
import { monotonicMicros } from './clock.js';
import {
  CONNECT_TIMEOUT, PEER_CLOSED, STREAM_CLOSE_GRACE_MS, classifyError,
  type AgentConnection, type ConnectionListener, type OutgoingMessage, type Transport, type TransportTarget,
} from './transport.js';


export class SyslogTcpTransport implements Transport {
  readonly protocol = 'tcp' as const;
  readonly acknowledged = false;

  constructor(private readonly target: TransportTarget) {}

  open(localAddress: string, listener: ConnectionListener): AgentConnection {
    return new TcpConnection(this.target, localAddress, listener);
  }
}

class TcpConnection implements AgentConnection {
  private readonly socket: net.Socket;
  private readonly openedAt = monotonicMicros();
  private established = false;
  /** The agent closed it, or it failed: the listener hears nothing more. */
  private finished = false;

  constructor(target: TransportTarget, localAddress: string, private readonly listener: ConnectionListener) {
    this.socket = net.connect({ host: target.host, port: target.port, localAddress, noDelay: true });
    this.socket.setTimeout(target.connectTimeoutMs);
    this.socket.once('connect', this.onConnect);
    this.socket.on('timeout', this.onTimeout);
    this.socket.on('error', this.onError);
    this.socket.on('end', this.onEnd);
    // Nothing is expected from the node, but reading is how its FIN is seen.
    this.socket.resume();
  }

  get pendingBytes(): number {
    return this.socket.writableLength;
  }

  /** Nothing is acknowledged over plain syslog. */
  readonly unacknowledged = 0;

  send(batch: readonly OutgoingMessage[]): void {
    if (this.finished) return;
    let frames = '';
    for (const message of batch) frames += `${message.text.length} ${message.text}`;
    this.socket.write(frames);
  }

  close(): void {
    if (this.finished) {
      this.socket.destroy();
      return;
    }
    this.finished = true;
    this.socket.end();
    this.socket.setTimeout(STREAM_CLOSE_GRACE_MS);
  }

  destroy(): void {
    this.finished = true;
    this.socket.destroy();
  }

  private readonly onConnect = (): void => {
    this.established = true;
    this.socket.setTimeout(0);
    if (!this.finished) this.listener.connected(monotonicMicros() - this.openedAt);
  };

  private readonly onTimeout = (): void => {
    if (this.finished) {
      this.socket.destroy();
      return;
    }
    this.fail(CONNECT_TIMEOUT);
  };

  private readonly onError = (err: NodeJS.ErrnoException): void => {
    this.fail(err.code ?? 'EUNKNOWN');
  };

  private readonly onEnd = (): void => {
    this.fail(PEER_CLOSED);
  };

  private fail(code: string): void {
    this.socket.destroy();
    if (this.finished) return;
    this.finished = true;
    this.listener.failed(classifyError(code, this.established), code, true);
  }
}
