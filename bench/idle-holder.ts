/**
 * Holds N idle TCP connections to one server: one process, one epoll set
 * (libuv), no thread per connection (loggen --idle-connections starts one
 * thread each and collapses at 10,000).
 *
 *   node dist/bench/idle-holder.js --port 20514 --count 5000 [--host 127.0.0.1] [--concurrency 200]
 *
 * Writes JSON lines to stdout: {"event":"held","open":N,"failed":F,"errors":{…}}
 * once every connection attempt has settled, and {"event":"status",…} for each
 * `status` line read on stdin. Closes everything and exits when stdin ends or
 * on SIGTERM/SIGINT.
 */
import net from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string' },
    count: { type: 'string' },
    // Connects in flight at once: a listen backlog overflow would turn into slow SYN retries.
    concurrency: { type: 'string', default: '200' },
    'timeout-ms': { type: 'string', default: '120000' },
  },
});
const host = values.host!;
const port = Number(values.port);
const count = Number(values.count);
const concurrency = Number(values.concurrency);
const timeoutMs = Number(values['timeout-ms']);
if (!Number.isInteger(port) || !Number.isInteger(count) || count < 0) {
  process.stderr.write('usage: idle-holder --port PORT --count N [--host HOST] [--concurrency N]\n');
  process.exit(2);
}

const sockets = new Set<net.Socket>();
let open = 0;
let failed = 0;
let closedByServer = 0;
let closing = false;
const errors: Record<string, number> = {};

function report(event: string): void {
  process.stdout.write(`${JSON.stringify({ event, open, failed, closedByServer, errors })}\n`);
}

function connectOne(): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    let connected = false;
    const timer = setTimeout(() => socket.destroy(Object.assign(new Error('connect timed out'), { code: 'ETIMEDOUT' })), timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      connected = true;
      open++;
      sockets.add(socket);
      resolve();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      const code = err.code ?? 'other';
      errors[code] = (errors[code] ?? 0) + 1;
    });
    socket.once('close', () => {
      clearTimeout(timer);
      sockets.delete(socket);
      if (connected) {
        open--;
        if (!closing) closedByServer++;
      } else {
        failed++;
        resolve();
      }
    });
  });
}

let next = 0;
async function worker(): Promise<void> {
  while (next < count && !closing) {
    next++;
    await connectOne();
  }
}

function closeAll(): void {
  if (closing) return;
  closing = true;
  for (const socket of sockets) socket.destroy();
  // Closed sockets leave the loop empty; stdin is the only thing left holding it.
  process.stdin.destroy();
}

process.on('SIGTERM', closeAll);
process.on('SIGINT', closeAll);
let buffered = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (s: string) => {
  buffered += s;
  let nl: number;
  while ((nl = buffered.indexOf('\n')) >= 0) {
    const command = buffered.slice(0, nl).trim();
    buffered = buffered.slice(nl + 1);
    if (command === 'status') report('status');
  }
});
process.stdin.on('end', closeAll);

await Promise.all(Array.from({ length: Math.min(concurrency, count) }, () => worker()));
report('held');
