/**
 * Lazy, bounded TLS handshakes for the syslog TLS listener.
 *
 * A TLS handshake holds OpenSSL state (tens of kilobytes, outside the V8
 * heap) from the moment a connection is wrapped. node:tls wraps at accept
 * and keeps a silent client for 120 s, so thousands of clients that never
 * send a ClientHello cost gigabytes no credential is needed for. Here:
 *
 * - a connection is accepted as a plain socket and wrapped only once its
 *   first bytes (the ClientHello) have arrived: a silent client costs a
 *   plain socket, and nothing of OpenSSL;
 * - at most `max_handshakes` handshakes run at once; a client that has sent
 *   its first bytes beyond that waits, still a plain socket, for a slot
 *   (oldest first);
 * - `handshake_timeout` after its accept a connection not through its
 *   handshake is closed (counted, reason `handshake_timeout`), whichever
 *   phase it is in: one sweep every half second over the connections in
 *   accept order, not a timer each.
 *
 * The listener's connection cap counts these connections with its sessions.
 */
import type net from 'node:net';
import tls from 'node:tls';
import { normalizeAddress } from '../../core/identity.js';
import type { Telemetry } from '../../telemetry/telemetry.js';

export interface HandshakeBounds {
  /** TLS handshakes in progress at once on the listener; connections past it wait as plain sockets. */
  maxHandshakes: number;
  /** A connection not through its handshake this long after its accept is closed (counted). */
  handshakeTimeoutMs: number;
}

export const DEFAULT_HANDSHAKE_BOUNDS: Readonly<HandshakeBounds> = Object.freeze({ maxHandshakes: 512, handshakeTimeoutMs: 10_000 });

const SWEEP_INTERVAL_MS = 500;
/** The tls.Server event by which a socket accepted elsewhere is handed to it (node:tls documents emitting it). */
const HAND_TO_TLS = 'connection';

/** The handshakes a socket belongs to: its events go to shared functions rather than closures per connection. */
const HANDSHAKES = Symbol('handshakes');
type PendingSocket = net.Socket & { [HANDSHAKES]: TlsHandshakes };

function pendingFirstBytes(this: PendingSocket): void {
  this[HANDSHAKES].firstBytes(this);
}
function pendingClose(this: PendingSocket): void {
  this[HANDSHAKES].forget(this);
}
/** A reset before the handshake is through ends in 'close' (forget); nothing more to say of it. */
function pendingError(): void {}

/** The plain socket under a TLS socket (node:tls keeps it as `_parent`; not in the typings). */
function plainSocketOf(socket: tls.TLSSocket): net.Socket | undefined {
  return (socket as unknown as { _parent?: net.Socket })._parent;
}

export class TlsHandshakes {
  /** Connections accepted and not yet through their handshake → when accepted (epoch ms); in accept order. */
  private readonly pending = new Map<net.Socket, number>();
  /** Of those, the ones being handshaken now. */
  private readonly handshaking = new Set<net.Socket>();
  /** Of those, the ones whose first bytes arrived while every slot was taken, oldest first (from `readyHead`). */
  private ready: net.Socket[] = [];
  private readyHead = 0;
  private readonly server: tls.Server;
  private sweeper: NodeJS.Timeout | null = null;

  constructor(
    options: tls.TlsOptions,
    private readonly bounds: HandshakeBounds,
    private readonly source: string,
    private readonly telemetry: Telemetry,
    onSecure: (socket: tls.TLSSocket) => void,
  ) {
    // Never listens: connections are handed to it (HAND_TO_TLS) once they have sent something.
    // Its own handshake timer (from the wrap) is the same length as ours (from the accept), so ours fires first.
    this.server = tls.createServer({ ...options, handshakeTimeout: bounds.handshakeTimeoutMs });
    this.server.on('secureConnection', (socket: tls.TLSSocket) => {
      this.finished(socket);
      onSecure(socket);
    });
    this.server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
      // node:tls leaves a socket whose handshake failed or timed out open: closing it is the listener's job.
      socket.destroy();
      // Not ours any more (the sweep closed it, or stop()): already counted.
      if (!this.finished(socket)) return;
      const peer = normalizeAddress(socket.remoteAddress ?? '');
      if (err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') this.telemetry.emit('connectionClosed', { source: this.source, reason: 'handshake_timeout', peer });
      else this.telemetry.emit('connectionRefused', { source: this.source, reason: 'tls_handshake', peer, error: err.message });
    });
  }

  /** Connections accepted and not yet through their handshake (the listener's cap counts them). */
  get size(): number {
    return this.pending.size;
  }

  /** Handshakes running now, and connections waiting for their first bytes or a slot. */
  counts(): { handshaking: number; waiting: number } {
    return { handshaking: this.handshaking.size, waiting: this.pending.size - this.handshaking.size };
  }

  /** A connection the listener admitted: it waits, a plain socket, for its first bytes. */
  accept(socket: net.Socket): void {
    this.pending.set(socket, Date.now());
    (socket as PendingSocket)[HANDSHAKES] = this;
    socket.on('error', pendingError);
    socket.once('close', pendingClose);
    socket.once('readable', pendingFirstBytes);
    if (this.sweeper === null) {
      this.sweeper = setInterval(this.sweep, SWEEP_INTERVAL_MS);
      this.sweeper.unref();
    }
  }

  /** Its first bytes arrived (they stay buffered in the socket for node:tls): handshake now, or wait for a slot. */
  firstBytes(socket: net.Socket): void {
    if (!this.pending.has(socket) || socket.destroyed) return;
    // Ended without a byte: nothing to handshake.
    if (socket.readableLength === 0) {
      socket.destroy();
      return;
    }
    if (this.handshaking.size < this.bounds.maxHandshakes) this.wrap(socket);
    else this.ready.push(socket);
  }

  /** The connection closed before it was through (the peer went, or a timeout). */
  forget(socket: net.Socket): void {
    if (!this.pending.delete(socket)) return;
    if (this.handshaking.delete(socket)) this.startWaiting();
  }

  /** Close every connection not yet through, and stop sweeping. */
  stop(): void {
    if (this.sweeper !== null) clearInterval(this.sweeper);
    this.sweeper = null;
    const sockets = [...this.pending.keys()];
    this.pending.clear();
    this.handshaking.clear();
    this.ready = [];
    this.readyHead = 0;
    for (const socket of sockets) socket.destroy();
  }

  private wrap(socket: net.Socket): void {
    this.handshaking.add(socket);
    this.server.emit(HAND_TO_TLS, socket);
  }

  /** A handshake ended (through or failed): true if it was one of ours; its slot goes to the next waiting. */
  private finished(socket: tls.TLSSocket): boolean {
    const plain = plainSocketOf(socket);
    if (plain === undefined || !this.pending.delete(plain)) return false;
    this.handshaking.delete(plain);
    this.startWaiting();
    return true;
  }

  /** Give free slots to the connections waiting with their first bytes, oldest first. */
  private startWaiting(): void {
    while (this.handshaking.size < this.bounds.maxHandshakes && this.readyHead < this.ready.length) {
      const socket = this.ready[this.readyHead++]!;
      if (this.pending.has(socket) && !socket.destroyed) this.wrap(socket);
    }
    if (this.readyHead === this.ready.length) {
      this.ready = [];
      this.readyHead = 0;
    }
  }

  /** Close the connections past their handshake timeout: the oldest first, stopping at the first still in time. */
  private readonly sweep = (): void => {
    const expired = Date.now() - this.bounds.handshakeTimeoutMs;
    let closed = 0;
    for (const [socket, acceptedAt] of this.pending) {
      if (acceptedAt > expired) break;
      // Forgotten first, so its close (and node:tls's error for it) is not counted again.
      this.pending.delete(socket);
      this.handshaking.delete(socket);
      const peer = normalizeAddress(socket.remoteAddress ?? '');
      socket.destroy();
      this.telemetry.emit('connectionClosed', { source: this.source, reason: 'handshake_timeout', peer });
      closed++;
    }
    if (closed > 0) this.startWaiting();
    if (this.pending.size === 0 && this.sweeper !== null) {
      clearInterval(this.sweeper);
      this.sweeper = null;
    }
  };
}
