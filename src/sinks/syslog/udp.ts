/**
 * Syslog over UDP (RFC 5426): one message per datagram, fire and forget.
 *
 * The seed's collector stalled because gen_udp:send waited for the port's
 * reply while the port was busy. Here nothing ever waits for a datagram:
 * socket.send() gets one shared callback that only counts, and a send is
 * refused (dropped, counted as `socket_full`) while too many are still
 * outstanding, which is what a full socket buffer looks like from here
 * (libuv queues what the kernel refuses with EAGAIN instead of failing it).
 * ENOBUFS/EAGAIN reported by a callback count as `socket_full` too; other
 * errors (ECONNREFUSED from an ICMP unreachable, say) as `send_error`.
 * Each batch ends by yielding to the event loop, so a deep queue is sent in
 * slices between other work, never in one long turn.
 *
 * The socket is connected to the receiver once (one name lookup, not one per
 * datagram); nothing is acknowledged.
 */
import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { DeliveryBatch, DeliveryTransport } from '../delivery/transport.js';
import type { DeliveryStats } from '../delivery/stats.js';
import type { SyslogSinkConfig } from './config.js';

const SPACE = 0x20;
const DIGIT_0 = 0x30;

export class UdpTransport implements DeliveryTransport {
  private socket: dgram.Socket | null = null;
  private readonly peer: string;
  /** Datagrams handed to the socket whose callback has not run yet. */
  private outstanding = 0;
  // Callback outcomes, added up here and flushed to the counters once nothing is outstanding.
  private full = 0;
  private tooLarge = 0;
  private failed = 0;
  private lastError = '';
  private whenAllSent: (() => void) | null = null;

  /** `background`: the socket does not keep the process alive (the node's own log output). */
  constructor(private readonly config: SyslogSinkConfig, private readonly stats: DeliveryStats, private readonly background = false) {
    this.peer = `${config.host}:${config.port}`;
  }

  async open(): Promise<void> {}

  async send(batch: DeliveryBatch): Promise<void> {
    const socket = this.socket ?? await this.connect();
    const limit = this.config.maxPendingDatagrams;
    let refused = 0;
    const chunks = batch.chunks;
    for (let c = 0; c < chunks.length; c++) {
      const chunk = chunks[c]!;
      const refusedBefore = refused;
      // Frames are `LEN SP MSG` (see SyslogEncoder); the datagram is MSG.
      let p = 0;
      while (p < chunk.length) {
        let length = 0;
        for (let c = chunk[p++]!; c !== SPACE; c = chunk[p++]!) length = length * 10 + c - DIGIT_0;
        if (this.outstanding >= limit) {
          refused++;
        } else {
          this.outstanding++;
          socket.send(chunk, p, length, this.sent);
        }
        p += length;
      }
      // Nothing over UDP is acknowledged, so which records they were does not matter; their tenant does.
      if (refused > refusedBefore) batch.dropIn(c, refused - refusedBefore);
    }
    if (refused > 0) this.stats.drop('socket_full', refused, `${limit} datagrams outstanding`);
    await yieldToEventLoop();
  }

  /** Let the datagrams still queued in the socket go out (the chain bounds the wait), then close. */
  async close(_deadline: number): Promise<void> {
    if (this.outstanding > 0) await new Promise<void>((resolve) => { this.whenAllSent = resolve; });
    this.destroy();
  }

  destroy(): void {
    const socket = this.socket;
    this.socket = null;
    if (socket !== null) {
      socket.close();
      this.stats.disconnected(this.peer, null);
    }
    this.flushCounts();
  }

  idle(): boolean {
    return this.outstanding === 0;
  }

  describe(): string | null {
    return this.socket === null ? null : `sending to ${this.peer}`;
  }

  private async connect(): Promise<dgram.Socket> {
    const { address, family } = await lookup(this.config.host);
    const socket = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
    if (this.background) socket.unref();
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.connect(this.config.port, address, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    // Send errors arrive in the callbacks, or, for an ICMP port unreachable answering an earlier
    // datagram, here (the socket's read saw it): that datagram is lost, the socket is fine.
    // Anything else means the socket is unusable: make a new one.
    socket.on('error', (err) => {
      if (this.socket !== socket) return;
      if ((err as NodeJS.ErrnoException).code === 'ECONNREFUSED') {
        this.failed++;
        this.lastError = err.message;
        if (this.outstanding === 0) this.flushCounts();
        return;
      }
      this.socket = null;
      socket.close();
      this.stats.disconnected(this.peer, err.message);
    });
    this.socket = socket;
    this.stats.connected(this.peer);
    return socket;
  }

  /** The one callback of every datagram: counts, never waits. */
  private readonly sent = (err: Error | null): void => {
    if (err !== null) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOBUFS' || code === 'EAGAIN' || code === 'EWOULDBLOCK') this.full++;
      else if (code === 'EMSGSIZE') this.tooLarge++;
      else this.failed++;
      this.lastError = err.message;
    }
    if (--this.outstanding === 0) {
      this.flushCounts();
      const resolve = this.whenAllSent;
      this.whenAllSent = null;
      resolve?.();
    }
  };

  private flushCounts(): void {
    if (this.full + this.tooLarge + this.failed === 0) return;
    // Handed to the socket (so already counted as written), then refused by the kernel.
    this.stats.drop('kernel_full', this.full, this.lastError);
    this.stats.drop('too_large', this.tooLarge, this.lastError);
    this.stats.drop('send_error', this.failed, this.lastError);
    this.full = this.tooLarge = this.failed = 0;
  }
}
