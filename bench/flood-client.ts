/**
 * W6's flooding tenant: a few TCP connections from one tenant's network, each
 * sending as fast as the server reads it. The frames are built once and the
 * same buffer is written again and again, so the client costs almost no CPU
 * (loadgen formats every message it sends, and its delay would show as the
 * steady tenants' latency).
 *
 *   node dist/bench/flood-client.js --port 20514 --local-address 127.0.1.1 [--connections 10] [--host 127.0.0.1]
 *
 * On SIGTERM it stops, closes its connections and writes one JSON line to
 * stdout: {"sent":N,"seconds":S,"cpuSeconds":C}.
 */
import net from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string' },
    'local-address': { type: 'string' },
    connections: { type: 'string', default: '10' },
  },
});
const port = Number(values.port);
const connections = Number(values.connections);
const localAddress = values['local-address'];
if (!Number.isInteger(port) || !Number.isInteger(connections) || connections < 1 || localAddress === undefined) {
  process.stderr.write('usage: flood-client --port PORT --local-address ADDRESS [--connections N] [--host HOST]\n');
  process.exit(2);
}

/** Frames per buffer: 256 KiB of 256-byte RFC 5424 messages, octet-counted. */
const FRAMES = 1024;
const message = (i: number): string => {
  const head = `<14>1 2026-01-01T00:00:00Z flood-host flood - - - flood ${i} `;
  return head + 'x'.repeat(Math.max(0, 256 - head.length));
};
let text = '';
for (let i = 0; i < FRAMES; i++) {
  const m = message(i);
  text += `${Buffer.byteLength(m)} ${m}`;
}
const chunk = Buffer.from(text);

const started = process.hrtime.bigint();
const cpuAtStart = process.cpuUsage();
let buffersWritten = 0;
let stopping = false;
const sockets: net.Socket[] = [];

function pump(socket: net.Socket): void {
  while (!stopping && !socket.destroyed) {
    buffersWritten++;
    if (!socket.write(chunk)) return;
  }
}

for (let c = 0; c < connections; c++) {
  const socket = net.connect({ host: values.host, port, localAddress }, () => pump(socket));
  socket.on('drain', () => pump(socket));
  socket.on('error', () => undefined);
  sockets.push(socket);
}

function stop(): void {
  if (stopping) return;
  stopping = true;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage(cpuAtStart);
  process.stdout.write(`${JSON.stringify({ sent: buffersWritten * FRAMES, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6 })}\n`);
  for (const socket of sockets) socket.destroy();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
