/**
 * The UDP listener's reader thread: it binds the socket and does nothing but
 * copy each datagram into the hand-off ring (udp-ring.ts), so a pause of the
 * node's event loop (a GC, a batch written, parsing a burst) does not stop
 * the kernel's buffer from being drained. The socket is bound exclusively:
 * node:cluster does not share sockets bound in a worker thread.
 */
import dgram from 'node:dgram';
import { parentPort, workerData } from 'node:worker_threads';
import { ipv4Number, RingWriter, type RingMemory } from './udp-ring.js';

/** What the source gives the thread. */
export interface ReaderSettings {
  memory: RingMemory;
  type: 'udp4' | 'udp6';
  address: string;
  port: number;
  /** SO_RCVBUF in bytes; 0 keeps the operating system's default. */
  receiveBufferBytes: number;
}

/** What the thread tells the source. */
export type ReaderMessage =
  | { event: 'listening'; address: string; port: number; receiveBufferBytes: number }
  | { event: 'bindFailed'; code: string; message: string }
  | { event: 'error'; message: string }
  | { event: 'closed' };

/** What the source tells the thread. */
export type ReaderCommand = { command: 'close' };

function run(settings: ReaderSettings): void {
  const port = parentPort!;
  const send = (message: ReaderMessage): void => port.postMessage(message);
  const ring = new RingWriter(settings.memory);
  const socket = dgram.createSocket({ type: settings.type });
  let bound = false;
  socket.on('error', (err: NodeJS.ErrnoException) => {
    if (bound) send({ event: 'error', message: err.message });
    else send({ event: 'bindFailed', code: err.code ?? '', message: err.message });
  });
  // Most datagrams come from the sender before: its address is compared, not parsed again.
  let lastAddress = '';
  let lastIpv4 = -1;
  socket.on('message', (datagram, peer) => {
    if (peer.address !== lastAddress) {
      lastAddress = peer.address;
      lastIpv4 = peer.family === 'IPv4' ? ipv4Number(peer.address) : -1;
    }
    ring.push(datagram, lastIpv4, peer.address, peer.port);
  });
  socket.bind({ address: settings.address, port: settings.port, exclusive: true }, () => {
    bound = true;
    if (settings.receiveBufferBytes > 0) socket.setRecvBufferSize(settings.receiveBufferBytes);
    const local = socket.address();
    send({ event: 'listening', address: local.address, port: local.port, receiveBufferBytes: socket.getRecvBufferSize() });
  });
  port.on('message', (message: ReaderCommand) => {
    if (message.command !== 'close') return;
    const closed = (): void => {
      send({ event: 'closed' });
      port.close();
    };
    try {
      socket.close(closed);
    } catch {
      // Never bound (or closed already).
      closed();
    }
  });
}

run(workerData as ReaderSettings);
