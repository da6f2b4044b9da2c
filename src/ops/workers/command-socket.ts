/**
 * How `sluice reload` and `sluice restart --rolling` reach a running node: a
 * unix socket in its data_dir (`sluice.sock`, owner-only) that takes one JSON
 * line and answers one JSON line once the operation has finished. The signals
 * (SIGHUP, SIGUSR2) do the same without an answer; see docs/operations.md.
 */
import { chmodSync, existsSync, mkdirSync, unlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Primary } from './primary.js';

export const SOCKET_FILE = 'sluice.sock';
export const PID_FILE = 'sluice.pid';

export type Command = 'reload' | 'restart';

export interface CommandAnswer {
  ok: boolean;
  /** What happened, or why not (one line each: validation problems of a refused reload). */
  messages: string[];
}

async function run(primary: Primary, command: Command, file: string | null): Promise<CommandAnswer> {
  try {
    if (command === 'reload') {
      const outcome = await primary.reload(file);
      if (!outcome.accepted) return { ok: false, messages: outcome.problems };
      await outcome.applied;
      return { ok: true, messages: [`configuration ${outcome.file ?? ''} accepted; every worker now runs it`] };
    }
    await primary.rollingRestart();
    return { ok: true, messages: [`rolling restart done; workers ${primary.slotIds().join(', ')}`] };
  } catch (err) {
    return { ok: false, messages: [(err as Error).message] };
  }
}

/** Is a node already answering on this socket? */
function answering(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(socketPath, () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

/** Listen on `<dataDir>/sluice.sock` and write `<dataDir>/sluice.pid`. Throws when another node runs on this data dir. */
export async function openCommandSocket(primary: Primary, dataDir: string): Promise<() => void> {
  mkdirSync(dataDir, { recursive: true });
  const socketPath = path.resolve(dataDir, SOCKET_FILE);
  const pidPath = path.resolve(dataDir, PID_FILE);
  if (existsSync(socketPath)) {
    if (await answering(socketPath)) throw new Error(`another sluice node is running with data_dir ${dataDir} (${socketPath} answers)`);
    unlinkSync(socketPath);
  }
  const server = net.createServer((socket) => {
    let input = '';
    socket.setEncoding('utf8');
    socket.on('error', () => undefined);
    socket.on('data', (chunk: string) => {
      input += chunk;
      const newline = input.indexOf('\n');
      if (newline < 0) {
        if (input.length > 4096) socket.destroy();
        return;
      }
      let command: unknown;
      let file: unknown;
      try {
        ({ command, config: file } = JSON.parse(input.slice(0, newline)) as { command?: unknown; config?: unknown });
      } catch {
        command = undefined;
      }
      socket.pause();
      const answer = command === 'reload' || command === 'restart'
        ? run(primary, command, typeof file === 'string' ? file : null)
        : Promise.resolve({ ok: false, messages: ['unknown command; expected {"command":"reload"} or {"command":"restart"}'] });
      void answer.then((a) => socket.end(`${JSON.stringify(a)}\n`));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => { server.off('error', reject); resolve(); });
  });
  chmodSync(socketPath, 0o600);
  writeFileSync(pidPath, `${process.pid}\n`);
  return () => {
    server.close();
    for (const file of [socketPath, pidPath]) {
      try {
        unlinkSync(file);
      } catch {
        // Already gone.
      }
    }
  };
}

/**
 * Send one command to the node running with `dataDir`; resolves with its
 * answer. `config`: the file the user named (a reload refuses another file
 * than the node's own).
 */
export function sendCommand(dataDir: string, command: Command, config: string | null = null, timeoutMs = 600_000): Promise<CommandAnswer> {
  const socketPath = path.resolve(dataDir, SOCKET_FILE);
  return new Promise((resolve, reject) => {
    let output = '';
    const request = config === null ? { command } : { command, config: path.resolve(config) };
    const socket = net.connect(socketPath, () => socket.write(`${JSON.stringify(request)}\n`));
    socket.setEncoding('utf8');
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    socket.on('data', (chunk: string) => { output += chunk; });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? new Error(`no sluice node is running with data_dir ${dataDir} (${socketPath})`) : err);
    });
    socket.once('end', () => {
      try {
        resolve(JSON.parse(output) as CommandAnswer);
      } catch {
        reject(new Error(`unreadable answer from the node: ${output.slice(0, 200)}`));
      }
    });
  });
}
