/**
 * Where the programs sluice is compared with live: rsyslog installed from
 * Debian, syslog-ng (and its load client, loggen) unpacked by
 * bench/peers/install.sh into bench/.peers/syslog-ng/ and run from there.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** The repository root (this file runs as dist/bench/peers.js). */
export const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
export const SLUICE_CLI = path.join(ROOT, 'dist', 'src', 'ops', 'cli.js');

/**
 * How the `sluice` command starts node: the environment and node options its
 * `#!/usr/bin/env -S …` line sets, so the benchmark starts the node as
 * `npm start` and the systemd unit do, without a second copy of them.
 */
export function sluiceLaunch(): { env: Record<string, string>; nodeOptions: string[] } {
  const first = readFileSync(SLUICE_CLI, 'utf8').split('\n', 1)[0]!;
  const words = /^#!\/usr\/bin\/env(?: -S)? (.+)$/.exec(first)?.[1]?.trim().split(/\s+/) ?? [];
  const node = words.indexOf('node');
  if (node < 0) throw new Error(`${SLUICE_CLI}: no #! line naming node: ${first}`);
  const env = Object.fromEntries(words.slice(0, node).map((word) => [word.slice(0, word.indexOf('=')), word.slice(word.indexOf('=') + 1)]));
  return { env, nodeOptions: words.slice(node + 1) };
}
export const INSTALL_HINT = 'install with: bash bench/peers/install.sh';

const SYSLOG_NG_ROOT = path.join(ROOT, 'bench', '.peers', 'syslog-ng');

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** A program on PATH, or in the sbin folders a non-root PATH may lack. */
function findProgram(name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    const file = path.join(dir, name);
    if (executable(file)) return file;
  }
  return null;
}

/** Environment for the unpacked syslog-ng tree: its own libraries and plugin folders. */
function syslogNgEnvironment(): NodeJS.ProcessEnv {
  const libs = ['usr/lib/syslog-ng', 'usr/lib/x86_64-linux-gnu', 'lib/x86_64-linux-gnu', 'usr/lib/aarch64-linux-gnu', 'lib/aarch64-linux-gnu']
    .map((dir) => path.join(SYSLOG_NG_ROOT, dir))
    .filter((dir) => existsSync(dir));
  const inherited = process.env.LD_LIBRARY_PATH;
  return {
    ...process.env,
    LD_LIBRARY_PATH: [...libs, ...(inherited ? [inherited] : [])].join(':'),
    // loggen finds its transport plugins under $SYSLOGNG_PREFIX/lib/syslog-ng/<version>/loggen.
    SYSLOGNG_PREFIX: path.join(SYSLOG_NG_ROOT, 'usr'),
  };
}

function syslogNgModulePath(): string | null {
  const base = path.join(SYSLOG_NG_ROOT, 'usr', 'lib', 'syslog-ng');
  if (!existsSync(base)) return null;
  const version = readdirSync(base).find((name) => /^\d+\.\d+$/.test(name));
  return version ? path.join(base, version) : null;
}

export interface UnpackedProgram {
  binary: string;
  env: NodeJS.ProcessEnv;
}

export interface Peers {
  /** /usr/sbin/rsyslogd, or null when rsyslog is not installed. */
  rsyslogd: string | null;
  syslogNg: (UnpackedProgram & { modulePath: string }) | null;
  loggen: UnpackedProgram | null;
}

export function findPeers(): Peers {
  const env = syslogNgEnvironment();
  const syslogNgBinary = path.join(SYSLOG_NG_ROOT, 'usr', 'sbin', 'syslog-ng');
  const loggenBinary = path.join(SYSLOG_NG_ROOT, 'usr', 'bin', 'loggen');
  const modulePath = syslogNgModulePath();
  return {
    rsyslogd: findProgram('rsyslogd'),
    syslogNg: executable(syslogNgBinary) && modulePath ? { binary: syslogNgBinary, env, modulePath } : null,
    loggen: executable(loggenBinary) ? { binary: loggenBinary, env } : null,
  };
}

/** Path of the loggen binary whether or not it is there (for messages and skip checks). */
export const LOGGEN_PATH = path.join(SYSLOG_NG_ROOT, 'usr', 'bin', 'loggen');

/** First line of a program's version output, for the results. */
export function versionOf(binary: string, args: string[], env: NodeJS.ProcessEnv = process.env): string | null {
  const out = spawnSync(binary, args, { encoding: 'utf8', env, timeout: 10_000 });
  const text = `${out.stdout ?? ''}${out.stderr ?? ''}`.trim();
  return out.status === 0 && text !== '' ? text.split('\n')[0]!.trim() : null;
}

export function peerVersions(peers: Peers): Record<string, string | null> {
  return {
    sluice: versionOf(process.execPath, [SLUICE_CLI, '--version']),
    // The tree the sluice build came from; `-dirty`: with uncommitted changes.
    'sluice commit': versionOf('git', ['-C', ROOT, 'describe', '--always', '--dirty']),
    node: process.version,
    // `rsyslogd  8.2302.0 (aka 2023.02) compiled with:` → `rsyslogd 8.2302.0 (aka 2023.02)`
    rsyslog: peers.rsyslogd ? versionOf(peers.rsyslogd, ['-v'])?.replace(/\s*compiled with:?$/, '').replace(/\s+/g, ' ') ?? null : null,
    'syslog-ng': peers.syslogNg ? versionOf(peers.syslogNg.binary, ['--version'], peers.syslogNg.env) : null,
  };
}

/** Whether the sluice CLI has the `loadgen` command (W5 needs it). */
export function loadgenAvailable(): boolean {
  const out = spawnSync(process.execPath, [SLUICE_CLI, '--help'], { encoding: 'utf8', timeout: 30_000 });
  return out.status === 0 && /^\s+loadgen\b/m.test(out.stdout);
}
