/**
 * Run by cli.test.ts inside a network namespace of its own (`unshare -n`), where the
 * default ports (5514, 2514, 4318, 8080, …) are free by construction: starts `sluice start`
 * with no configuration in the folder given, sends one record over TCP and one over UDP
 * to 5514, stops the node with SIGTERM and prints what it saw as one JSON line.
 */
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import path from 'node:path';
import { closed, connect, jsonLines, readTenantRecords, ROOT, waitFor } from '../helpers.js';

const dir = process.argv[2]!;
const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'src', 'ops', 'cli.js'), 'start'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
const lines = jsonLines(child.stderr!);
const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
try {
  await waitFor('ready', () => lines.some((l) => l.code === 'SLU0003I' || l.code === 'SLU0008E'), 60_000);
  if (lines.some((l) => l.code === 'SLU0008E')) throw new Error(`node failed to start: ${JSON.stringify(lines)}`);
  const socket = await connect(5514);
  socket.end('<13>1 - host app - - - over tcp\n');
  await closed(socket);
  const udp = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => udp.send('<13>1 - host app - - - over udp', 5514, '127.0.0.1', () => resolve()));
  udp.close();
  const logs = path.join(dir, 'data', 'logs');
  await waitFor('both records', () => readTenantRecords(logs, 'default').length === 2, 60_000);
  child.kill('SIGTERM');
  const code = await exited;
  const listening = lines.filter((l) => l.code === 'SLU0002I').map((l) => `${String(l.source)} ${String(l.address)}:${String(l.port)}`);
  process.stdout.write(`${JSON.stringify({ code, listening, messages: readTenantRecords(logs, 'default').map((r) => r.msg) })}\n`);
} catch (err) {
  child.kill('SIGKILL');
  process.stdout.write(`${JSON.stringify({ error: (err as Error).message })}\n`);
  process.exitCode = 1;
}
