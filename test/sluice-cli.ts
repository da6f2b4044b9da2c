/**
 * A real `sluice` as its users run it: `sluice start` (the primary and its
 * workers) as a child process whose JSON log lines are collected, and the
 * commands that talk to it (`reload`, `restart --rolling`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { jsonLines, ROOT } from './helpers.js';

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
