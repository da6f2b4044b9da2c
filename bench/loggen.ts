/**
 * loggen, syslog-ng's load client: an independent sender, the same for every
 * server. Its messages carry `seq: N, thread: T`, which the output check uses
 * to find lost and duplicated records.
 */
import type { UnpackedProgram } from './peers.js';
import { HOST } from './ports.js';
import type { ProcessGroup } from './processes.js';

export interface LoggenOptions {
  transport: 'tcp' | 'udp';
  port: number;
  /** Message size in bytes (loggen pads the text to it). */
  size: number;
  /** Sending connections (TCP) or sockets (UDP), one thread each. */
  connections: number;
  /** Messages each connection sends: loggen's --number counts per connection. */
  messagesPerConnection: number;
  /** Upper bound on the run, in seconds: loggen stops after 10 s unless told otherwise. */
  maxSeconds: number;
}

export interface LoggenResult {
  /** Messages loggen wrote to its sockets. */
  sent: number;
  seconds: number;
  startedAt: number;
  finishedAt: number;
}

/** Rate per connection high enough to mean "as fast as the client goes". */
const UNLIMITED_RATE = 1_000_000_000;

export function loggenArguments(o: LoggenOptions): string[] {
  return [
    '--inet',
    o.transport === 'tcp' ? '--stream' : '--dgram',
    '--syslog-proto',
    // RFC 5424 over TCP is octet-counted (RFC 6587); over UDP each datagram is one message, unframed (RFC 5426).
    ...(o.transport === 'udp' ? ['--no-framing'] : []),
    '--size', String(o.size),
    '--active-connections', String(o.connections),
    '--number', String(o.messagesPerConnection),
    '--rate', String(UNLIMITED_RATE),
    '--interval', String(o.maxSeconds),
    HOST, String(o.port),
  ];
}

/** loggen's closing line: `average rate = 133156.59 msg/sec, count=1000000, time=7.50995, …`. */
export function parseLoggenSummary(text: string): { count: number; seconds: number } | null {
  const matches = [...text.matchAll(/average rate = [\d.]+ msg\/sec, count=(\d+), time=([\d.]+)/g)];
  const last = matches.at(-1);
  return last ? { count: Number(last[1]), seconds: Number(last[2]) } : null;
}

export async function runLoggen(loggen: UnpackedProgram, options: LoggenOptions, group: ProcessGroup): Promise<LoggenResult> {
  const startedAt = Date.now();
  const proc = group.spawn('loggen', loggen.binary, loggenArguments(options), { env: loggen.env });
  const timer = setTimeout(() => void proc.stop(1000), (options.maxSeconds + 30) * 1000);
  const status = await proc.exited;
  clearTimeout(timer);
  const finishedAt = Date.now();
  const output = `${proc.stderrTail()}\n${proc.stdoutTail()}`;
  const summary = parseLoggenSummary(output);
  if (!summary) throw new Error(`loggen gave no summary (exit ${JSON.stringify(status)}): ${output.slice(-1500)}`);
  if (/error connecting|can not connect/i.test(output)) throw new Error(`loggen could not connect: ${output.slice(-1500)}`);
  return { sent: summary.count, seconds: summary.seconds, startedAt, finishedAt };
}
