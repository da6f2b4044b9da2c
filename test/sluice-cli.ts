/**
 * A real `sluice` as its users run it: `sluice start` (the primary and its
 * workers) as a child process whose JSON log lines are collected, and the
 * commands that talk to it (`reload`, `restart --rolling`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { jsonLines, ROOT, waitFor } from './helpers.js';

export const CLI = path.join(ROOT, 'dist', 'src', 'ops', 'cli.js');

export interface RunningNode { child: ChildProcess; lines: Record<string, unknown>[]; exited: Promise<number | null> }

/** `sluice start -c <config>` in `cwd`; its stderr log lines as they come. */
export function startNode(config: string, cwd: string): RunningNode {
  const child = spawn(process.execPath, [CLI, 'start', '-c', config], { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  const lines = jsonLines(child.stderr!);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, lines, exited };
}

/** Run a sluice command to its end. */
export function sluice(args: string[], cwd: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
    child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
    child.on('exit', (status) => resolve({ status, stdout, stderr }));
  });
}

/** The pids of a process and its children (the primary and its workers), read from /proc. */
export function processTree(pid: number): number[] {
  let children: number[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    // Gone meanwhile.
  }
  return [pid, ...children.flatMap(processTree)];
}

/** Resident memory (VmRSS) summed over a node's processes, in bytes. */
export function nodeRssBytes(node: RunningNode): number {
  let total = 0;
  for (const pid of processTree(node.child.pid!)) {
    try {
      const kib = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
      total += Number(kib ?? 0) * 1024;
    } catch {
      // Exited between the listing and the read.
    }
  }
  return total;
}

/** The admin URL of a running node (from its SLU0700I line). */
export async function adminUrl(node: RunningNode): Promise<string> {
  const line = await waitFor('the admin server listening', () => node.lines.find((l) => l.code === 'SLU0700I'), 30_000);
  return String(line.url);
}

/** A metric of the node's /metrics, summed over the series whose labels include `labels`. */
export async function scrapeMetric(url: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  // A kept-alive connection the server closed at that moment fails once: ask again on a new one.
  const text = await fetch(`${url}metrics`).catch(() => fetch(`${url}metrics`, { headers: { connection: 'close' } })).then((res) => res.text());
  let sum = 0;
  for (const line of text.split('\n')) {
    const match = /^([a-z_:]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null || match[1] !== name) continue;
    const have = new Map([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) sum += Number(match[3]);
  }
  return sum;
}
