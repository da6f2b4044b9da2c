/**
 * A RELP client for tests, with its own frame reader (independent of the
 * server's parser), over a real loopback socket.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { waitFor } from './helpers.js';

export const OPEN_OFFERS = 'relp_version=0\nrelp_software=sluice-test\ncommands=syslog';

export interface Frame {
  txnr: number;
  command: string;
  data: string;
}

/** Records every frame the server sends, in arrival order. */
export class RelpTestClient {
  readonly received: Frame[] = [];
  private pending = Buffer.alloc(0);
  private txnr = 1;
  private listeners: (() => void)[] = [];
  /** Called synchronously as each frame arrives. */
  onFrame: ((frame: Frame) => void) | null = null;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.pending = Buffer.concat([this.pending, chunk]);
      for (;;) {
        const header = /^(\d{1,9}) ([a-zA-Z]{1,32}) (\d{1,9})/.exec(this.pending.toString('latin1', 0, Math.min(this.pending.length, 60)));
        if (!header) break;
        const length = Number(header[3]);
        const start = header[0].length + (length > 0 ? 1 : 0);
        if (this.pending.length < start + length + 1) break;
        assert.equal(this.pending[start + length], 0x0a, 'every server frame ends in LF');
        const frame = { txnr: Number(header[1]), command: header[2]!, data: this.pending.toString('utf8', start, start + length) };
        this.pending = Buffer.from(this.pending.subarray(start + length + 1));
        this.received.push(frame);
        this.onFrame?.(frame);
      }
      for (const listener of this.listeners.splice(0)) listener();
    });
    socket.on('error', () => undefined);
  }

  static connect(port: number, localAddress = '127.0.0.1'): Promise<RelpTestClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host: '127.0.0.1', localAddress }, () => {
        socket.off('error', reject);
        resolve(new RelpTestClient(socket));
      });
      socket.once('error', reject);
    });
  }

  /** Frame one command with the next transaction number; returns the frame and its txnr. */
  frame(command: string, data = ''): { bytes: string; txnr: number } {
    const txnr = this.txnr++;
    const length = Buffer.byteLength(data);
    return { bytes: length === 0 ? `${txnr} ${command} 0\n` : `${txnr} ${command} ${length} ${data}\n`, txnr };
  }

  send(command: string, data = ''): number {
    const { bytes, txnr } = this.frame(command, data);
    this.socket.write(bytes);
    return txnr;
  }

  async open(): Promise<Frame> {
    const txnr = this.send('open', OPEN_OFFERS);
    return this.response(txnr);
  }

  /** The `rsp` to `txnr`, once it has arrived. */
  async response(txnr: number, timeoutMs = 10_000): Promise<Frame> {
    return waitFor(`rsp ${txnr}`, () => this.received.find((f) => f.command === 'rsp' && f.txnr === txnr), timeoutMs);
  }

  responses(): Frame[] {
    return this.received.filter((f) => f.command === 'rsp');
  }
}
