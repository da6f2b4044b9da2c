/**
 * Overload: HTTP senders offer 10× what the sink's receiver drains, for a
 * while; the node must stay within its memory budget (plus its fixed
 * overhead) and lose nothing it acknowledged.
 *
 *   node dist/bench/overload.js [--unthrottled] [--seconds 60] [--drain 2000] [--factor 10] [--budget 16MiB] [--clients 16] [--tcp-senders 4]
 *
 * - the node: `sluice start` in a child process, its only sink a syslog
 *   forward over TCP to the receiver below, whose queue high-water mark is set
 *   far above the budget, so the memory governor (not the sink's own
 *   backpressure) is what holds the node back;
 * - the receiver (in this process) reads at `--drain` records per second
 *   during the run, then as fast as it can;
 * - 4 TCP connections send octet-counted syslog at `--factor` × the drain
 *   rate in all (open loop, held back only by TCP backpressure): the load
 *   that would fill memory if nothing stopped reading;
 * - 16 HTTP clients post NDJSON batches of 100 records, one request a second
 *   each: a 200 means acknowledged, a 503 is retried after its Retry-After;
 *   these are the records whose loss is counted. Every record carries a
 *   unique id.
 *
 * `--unthrottled` runs the same load against a receiver that keeps up: the
 * node's RSS then is its working set under that load with nothing held,
 * the "fixed overhead" the overload's peak is compared with.
 *
 * Measured: the node's RSS before the load (its fixed overhead) and sampled
 * every 250 ms during it (peak), the governor's states and paused sessions
 * (from its log), acknowledged vs delivered ids. Prints one JSON object.
 */
import net from 'node:net';
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import YAML from 'yaml';
import { SyslogFramer } from '../src/sources/syslog/framing.js';
import { parseSize } from '../src/core/units.js';
import { ProcessGroup } from './processes.js';
import { freePort } from './ports.js';
import { MemorySampler } from './proc-stats.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    drain: { type: 'string', default: '2000' },
    factor: { type: 'string', default: '10' },
    budget: { type: 'string', default: '16MiB' },
    clients: { type: 'string', default: '16' },
    'tcp-senders': { type: 'string', default: '4' },
    // The same load with a receiver that keeps up: the node's working set under that load, with nothing held.
    unthrottled: { type: 'boolean', default: false },
  },
});
const seconds = Number(values.seconds);
const drainPerSecond = Number(values.drain);
const offeredPerSecond = drainPerSecond * Number(values.factor);
const budgetBytes = parseSize(values.budget!) ?? 0;
const clients = Number(values.clients);
const tcpSenders = Number(values['tcp-senders']);
const BATCH = 100;
const PADDING = 'p'.repeat(200);
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');

const group = new ProcessGroup();
group.stopOnSignals();

/** The slow receiver: reads at most `drainPerSecond` records a second until `unthrottle()`. */
class SlowReceiver {
  readonly delivered = new Set<string>();
  frames = 0;
  private throttled = !values.unthrottled;
  private readonly sockets = new Set<net.Socket>();
  private readonly server: net.Server;
  /** When the receiver may read again: each chunk's frames cost 1/drainPerSecond s each. */
  private nextReadAt = 0;

  constructor() {
    this.server = net.createServer((socket) => {
      this.sockets.add(socket);
      const framer = new SyslogFramer(1024 * 1024, (buf, start, end) => {
        this.frames++;
        chunkFrames++;
        const id = /\bid=(\d+)/.exec(buf.toString('latin1', start, Math.min(end, start + 400)))?.[1];
        if (id !== undefined) this.delivered.add(id);
      });
      let chunkFrames = 0;
      socket.on('data', (chunk: Buffer) => {
        chunkFrames = 0;
        framer.push(chunk);
        this.throttle(socket, chunkFrames);
      });
      socket.on('error', () => undefined);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  listen(port: number): Promise<void> {
    return new Promise((resolve) => this.server.listen(port, '127.0.0.1', resolve));
  }

  /** A token bucket over all connections: past the rate, the socket pauses until its frames are paid for. */
  private throttle(socket: net.Socket, frames: number): void {
    if (!this.throttled) return;
    const now = Date.now();
    this.nextReadAt = Math.max(this.nextReadAt, now) + (1000 * frames) / drainPerSecond;
    if (this.nextReadAt > now) {
      socket.pause();
      setTimeout(() => { if (this.throttled) socket.resume(); }, this.nextReadAt - now);
    }
  }

  unthrottle(): void {
    this.throttled = false;
    for (const socket of this.sockets) socket.resume();
  }

  close(): void {
    for (const socket of this.sockets) socket.destroy();
    this.server.close();
  }
}

const dir = group.tempDir('sluice-overload-');
const receiverPort = await freePort();
const httpPort = await freePort();
const receiver = new SlowReceiver();
await receiver.listen(receiverPort);
const config = {
  data_dir: path.join(dir, 'data'),
  log: { level: 'info' },
  // The budget here bounds what the queues hold beyond the node's fixed overhead (the measure this bench checks).
  memory: { budget: budgetBytes, measure: 'queues' },
  sources: { syslog_udp: { port: 0 }, syslog_tcp: { port: 0 }, syslog_tls: { port: 0 }, relp: { port: 0 }, http: { port: httpPort, ack_timeout: '120s' } },
  hostmeta: { service: { port: 0 } },
  admin: { port: 0 },
  sinks: { forward: { type: 'syslog', queue_high_water: '1GiB', syslog: { protocol: 'tcp', host: '127.0.0.1', port: receiverPort } } },
};
const configFile = path.join(dir, 'sluice.yaml');
writeFileSync(configFile, YAML.stringify(config));
const node = group.spawnWithFileLimit('sluice', process.execPath, [path.join(ROOT, 'dist/src/ops/cli.js'), 'start', '-c', configFile]);
const deadline = Date.now() + 30_000;
while (!node.stderrTail().includes('SLU0003I')) {
  if (!node.running || Date.now() > deadline) throw new Error(`sluice did not start: ${node.stderrTail()}`);
  await new Promise((resolve) => setTimeout(resolve, 100));
}
await new Promise((resolve) => setTimeout(resolve, 1000));
const sampler = new MemorySampler(node.pid);
const idleRss = sampler.sample().rssBytes;

const tcpPort = await new Promise<number>((resolve) => {
  // The node's TCP listener took port 0: find it in its "listening" line.
  const match = /"code":"SLU0002I","source":"syslog_tcp","address":"[^"]*","port":(\d+)/.exec(node.stderrTail());
  resolve(Number(match?.[1] ?? 0));
});
if (tcpPort === 0) throw new Error('no syslog_tcp listening line');
let tcpWritten = 0;

/** Open loop at its share of the offered rate, in 10 ms steps; a full socket (TCP backpressure) waits for 'drain'. */
async function tcpSender(n: number): Promise<void> {
  const socket = net.connect({ port: tcpPort, host: '127.0.0.1' });
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.on('error', () => undefined);
  const perStep = offeredPerSecond / tcpSenders / 100;
  let owed = 0;
  let seq = 0;
  while (!stop) {
    owed += perStep;
    let chunk = '';
    while (owed >= 1) {
      const msg = `<14>1 - tcp${n} app - - - tcp${n}-${seq++} ${PADDING}`;
      chunk += `${Buffer.byteLength(msg)} ${msg}`;
      owed--;
      tcpWritten++;
    }
    if (chunk !== '' && !socket.write(chunk)) await new Promise((resolve) => socket.once('drain', resolve));
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  socket.destroy();
}

const acknowledged = new Set<string>();
const statuses: Record<string, number> = {};
let offered = 0;
let nextId = 0;
let stop = false;
const startedAt = Date.now();
const perClientInterval = 1000;

async function client(): Promise<void> {
  let due = Date.now();
  while (!stop) {
    const ids = Array.from({ length: BATCH }, () => String(nextId++));
    offered += BATCH;
    const body = ids.map((id) => JSON.stringify({ msg: `id=${id} ${PADDING}`, hostname: 'overload' })).join('\n');
    for (;;) {
      let status: number;
      let retryAfter = 1;
      try {
        const res = await request(`http://127.0.0.1:${httpPort}/v1/ingest`, { method: 'POST', body, headers: { 'content-type': 'application/x-ndjson' } });
        await res.body.text();
        status = res.statusCode;
        retryAfter = Number(res.headers['retry-after'] ?? 1);
      } catch {
        status = 0;
      }
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (status === 200) {
        for (const id of ids) acknowledged.add(id);
        break;
      }
      if (stop) break;
      await new Promise((resolve) => setTimeout(resolve, retryAfter * 1000));
    }
    // One request a second; a client that fell behind sends its next batch at once.
    due += perClientInterval;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

const running = [...Array.from({ length: clients }, client), ...Array.from({ length: tcpSenders }, (_, n) => tcpSender(n))];
await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
stop = true;
await Promise.all(running);
const loadSeconds = (Date.now() - startedAt) / 1000;
const peakRssDuringLoad = sampler.stop().rssBytes;
const deliveredDuringLoad = receiver.frames;

// Drain: the receiver reads at full speed until every acknowledged record is there (or 5 minutes).
receiver.unthrottle();
const drainDeadline = Date.now() + 300_000;
const missing = (): number => {
  let n = 0;
  for (const id of acknowledged) if (!receiver.delivered.has(id)) n++;
  return n;
};
while (missing() > 0 && Date.now() < drainDeadline) await new Promise((resolve) => setTimeout(resolve, 500));

const log = node.stderrTail();
// What the governor measured each time pressure rose past a mark.
const rises = log.split('\n').filter((l) => l.includes('"code":"SLU0612W"')).map((l) => JSON.parse(l) as Record<string, number>);
const maxOf = (key: string): number => Math.max(0, ...rises.map((r) => r[key] ?? 0));
const codes = (code: string): number => log.split('\n').filter((l) => l.includes(`"code":"${code}"`)).length;
await node.stop(30_000);
receiver.close();
await group.stopAll();

const MiB = 1024 * 1024;
process.stdout.write(`${JSON.stringify({
  seconds: Math.round(loadSeconds),
  drainPerSecond,
  offeredPerSecond,
  budgetMiB: budgetBytes / MiB,
  tcpWritten,
  httpOffered: offered,
  acknowledged: acknowledged.size,
  deliveredDuringLoad,
  httpDelivered: receiver.delivered.size,
  framesDelivered: receiver.frames,
  receiverThrottled: !values.unthrottled,
  acknowledgedLost: missing(),
  httpStatuses: statuses,
  idleRssMiB: +(idleRss / MiB).toFixed(1),
  peakRssMiB: +(peakRssDuringLoad / MiB).toFixed(1),
  peakOverIdleMiB: +((peakRssDuringLoad - idleRss) / MiB).toFixed(1),
  peakOverIdleWithinBudget: peakRssDuringLoad - idleRss <= budgetBytes,
  governorEvents: { rising: codes('SLU0612W'), falling: codes('SLU0613I'), paused: codes('SLU0614W') },
  atRises: { accountedMiB: +(maxOf('accounted_bytes') / MiB).toFixed(1), heapUsedMiB: +(maxOf('heap_used_bytes') / MiB).toFixed(1),
    rssMiB: +(maxOf('rss_bytes') / MiB).toFixed(1) },
}, null, 2)}\n`);
