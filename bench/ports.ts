/**
 * Loopback ports for the servers under test: below 32768, so they never collide
 * with the kernel's ephemeral range the clients connect from, and free for
 * both TCP and UDP.
 */
import { spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import net from 'node:net';

export const HOST = '127.0.0.1';
const LOWEST_PORT = 20_000;
const HIGHEST_PORT = 32_767;

function tcpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: HOST, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

function udpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    socket.once('error', () => {
      socket.close();
      resolve(false);
    });
    socket.bind(port, HOST, () => socket.close(() => resolve(true)));
  });
}

const handedOut = new Set<number>();

/** A port free for TCP and UDP on 127.0.0.1, not handed out before by this process. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = LOWEST_PORT + Math.floor(Math.random() * (HIGHEST_PORT - LOWEST_PORT + 1));
    if (handedOut.has(port)) continue;
    if (await tcpFree(port) && await udpFree(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port between ${LOWEST_PORT} and ${HIGHEST_PORT}`);
}

/** Whether some process has a socket bound to 127.0.0.1:port (TCP: listening) per /proc/net. */
export function isBound(protocol: 'tcp' | 'udp', port: number): boolean {
  const wanted = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  // TCP state 0A is LISTEN; a bound UDP socket is 07 (CLOSE, i.e. unconnected).
  const state = protocol === 'tcp' ? '0A' : '07';
  const table = readFileSync(`/proc/net/${protocol}`, 'utf8').split('\n').slice(1);
  return table.some((line) => {
    const cols = line.trim().split(/\s+/);
    return cols[1] === wanted && cols[3] === state;
  });
}

/**
 * The receive buffer the kernel actually gave the UDP socket on the port (what
 * `ss -m` shows as rb; the kernel doubles what SO_RCVBUF asked for), or null
 * when `ss` is not there.
 */
export function udpReceiveBuffer(port: number): number | null {
  const out = spawnSync('ss', ['-u', '-a', '-n', '-m', `sport = :${port}`], { encoding: 'utf8' });
  if (out.status !== 0) return null;
  const match = /rb(\d+)/.exec(out.stdout);
  return match ? Number(match[1]) : null;
}
