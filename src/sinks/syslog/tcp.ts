/**
 * Syslog over TCP or TLS to one receiver: octet-counted frames (RFC 6587
 * 3.4.1, RFC 5425), one connection, opened when there is something to send.
 *
 * A batch is delivered when its bytes have been written to the socket (the
 * write callback). That is weaker than the receiver having stored them:
 * bytes in the kernel's buffers, or the receiver's, are lost if the
 * connection or the receiver dies, and syslog has no acknowledgement to
 * tell. A connection that fails mid-batch is retried from the first chunk
 * not yet written, so the receiver may get a few records twice.
 *
 * Backpressure: when socket.write() returns false the next chunk waits for
 * 'drain', so a receiver that stops reading holds the batch, the queue fills
 * up to its high-water mark and the sources slow down. Reconnecting is the
 * chain's retry: a failed connect fails the send, which is retried with
 * exponential backoff and jitter.
 */
import net from 'node:net';
import tls from 'node:tls';
import { readFile } from 'node:fs/promises';
import type { DeliveryBatch, DeliveryTransport } from '../delivery/transport.js';
import type { DeliveryStats } from '../delivery/stats.js';
import type { SyslogSinkConfig } from './config.js';

const KEEPALIVE_DELAY_MS = 30_000;

interface TlsMaterial {
  ca: Buffer | undefined;
  cert: Buffer | undefined;
  key: Buffer | undefined;
}

export class StreamTransport implements DeliveryTransport {
  private socket: net.Socket | null = null;
  private connecting: net.Socket | null = null;
  private material: TlsMaterial | null = null;
  private readonly peer: string;
  /** The send in progress: its batch, the next chunk to write, and how to settle it. */
  private batch: DeliveryBatch | null = null;
  private nextChunk = 0;
  /** Chunks of the send whose write callback has run. */
  private writtenChunks = 0;
  private resolveSend: (() => void) | null = null;
  private rejectSend: ((err: Error) => void) | null = null;
  /** The last error the socket reported, to explain its close. */
  private socketError: Error | null = null;
  private closing = false;

  /** `background`: the connection does not keep the process alive (the node's own log output). */
  constructor(private readonly config: SyslogSinkConfig, private readonly stats: DeliveryStats, private readonly background = false) {
    this.peer = `${config.host}:${config.port}`;
  }

  async open(): Promise<void> {
    if (this.config.protocol !== 'tls') return;
    const { caFile, certFile, keyFile } = this.config.tls;
    // Read once at start: a missing file is a configuration error, not something to retry.
    this.material = {
      ca: caFile === null ? undefined : await readFile(caFile),
      cert: certFile === null ? undefined : await readFile(certFile),
      key: keyFile === null ? undefined : await readFile(keyFile),
    };
  }

  async send(batch: DeliveryBatch): Promise<void> {
    if (this.socket === null) await this.connect();
    return new Promise<void>((resolve, reject) => {
      this.batch = batch;
      this.nextChunk = 0;
      this.writtenChunks = 0;
      this.resolveSend = resolve;
      this.rejectSend = reject;
      this.writeMore();
    });
  }

  async close(_deadline: number): Promise<void> {
    this.closing = true;
    const socket = this.socket;
    if (socket === null || socket.destroyed) return;
    // end() flushes what is buffered, then FIN; the chain bounds this wait by the deadline.
    await new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      socket.end();
    });
  }

  destroy(): void {
    this.closing = true;
    this.connecting?.destroy();
    this.socket?.destroy();
    this.failSend(new Error('sink destroyed'));
  }

  describe(): string | null {
    if (this.socket !== null) return `connected to ${this.peer}`;
    return this.connecting !== null ? `connecting to ${this.peer}` : `not connected to ${this.peer}`;
  }

  private connect(): Promise<void> {
    const { host, port, connectTimeoutMs } = this.config;
    return new Promise<void>((resolve, reject) => {
      const material = this.material;
      const socket = material === null
        ? net.connect({ host, port })
        : tls.connect({ host, port, ca: material.ca, cert: material.cert, key: material.key, servername: this.serverName() });
      if (this.background) socket.unref();
      this.connecting = socket;
      const timer = setTimeout(() => socket.destroy(new Error(`connect timed out after ${connectTimeoutMs} ms`)), connectTimeoutMs);
      if (this.background) timer.unref();
      const failed = (err: Error): void => {
        clearTimeout(timer);
        if (this.connecting === socket) this.connecting = null;
        reject(new Error(`connect to ${this.peer}: ${err.message}`));
      };
      socket.once('error', failed);
      socket.once(material === null ? 'connect' : 'secureConnect', () => {
        clearTimeout(timer);
        socket.off('error', failed);
        this.connecting = null;
        if (this.closing) {
          socket.destroy();
          reject(new Error('sink destroyed'));
          return;
        }
        this.adopt(socket);
        resolve();
      });
    });
  }

  /** TLS checks the certificate against this name; an IP address is checked against the IP SANs instead. */
  private serverName(): string | undefined {
    const name = this.config.tls.serverName ?? this.config.host;
    return net.isIP(name) === 0 ? name : undefined;
  }

  private adopt(socket: net.Socket): void {
    this.socket = socket;
    this.socketError = null;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, KEEPALIVE_DELAY_MS);
    // A syslog receiver sends nothing; reading anyway is how its close is noticed.
    socket.on('data', ignore);
    socket.on('end', () => socket.destroy());
    socket.on('error', (err) => { this.socketError = err; });
    socket.on('close', () => {
      if (this.socket !== socket) return;
      this.socket = null;
      const reason = this.socketError?.message ?? 'closed by the receiver';
      this.stats.disconnected(this.peer, this.closing ? null : reason);
      this.failSend(new Error(`connection to ${this.peer} lost: ${reason}`));
    });
    this.stats.connected(this.peer);
  }

  /** Write chunks until the socket asks us to wait; 'drain' brings us back. */
  private readonly writeMore = (): void => {
    const batch = this.batch;
    const socket = this.socket;
    if (batch === null || socket === null) return;
    while (this.nextChunk < batch.chunks.length) {
      if (!socket.write(batch.chunks[this.nextChunk++]!, this.chunkWritten)) {
        socket.once('drain', this.writeMore);
        return;
      }
    }
  };

  /** Write callbacks come in order, so counting them tells which leading chunks are down. */
  private readonly chunkWritten = (err?: Error | null): void => {
    const batch = this.batch;
    if (batch === null) return;
    if (err) {
      this.failSend(err);
      return;
    }
    batch.delivered(this.writtenChunks++);
    if (this.writtenChunks === batch.chunks.length) {
      const resolve = this.resolveSend!;
      this.clearSend();
      resolve();
    }
  };

  private failSend(err: Error): void {
    const reject = this.rejectSend;
    if (reject === null) return;
    this.clearSend();
    reject(err);
  }

  private clearSend(): void {
    this.batch = null;
    this.resolveSend = null;
    this.rejectSend = null;
  }
}

function ignore(): void {}
