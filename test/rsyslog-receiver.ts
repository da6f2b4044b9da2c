/**
 * The real rsyslog as the receiver of a forwarding sink: imtcp (plain, or
 * gtls with required client certificates) writing each message to a file as
 * one line of its fields, so a test judges what a real syslog server parsed,
 * not what the project's own framer thinks it sent.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { lateBoundPort, waitFor } from './helpers.js';

export interface RsyslogReceiver {
  port: number;
  /** Lines rsyslog wrote: `PRI|TIMESTAMP|HOSTNAME|APP|PROCID|MSGID|SD|MSG`. */
  lines(): string[];
  /** Stops rsyslog (SIGSTOP): it reads nothing, so what is sent fills the kernel's buffers, as a receiver that falls behind. */
  pause(): void;
  /** Lets it run again (SIGCONT). */
  resume(): void;
}

export interface ReceiverOptions {
  /** PEM files for TLS (imtcp with gtls, client certificates required); absent: plain TCP. */
  tls?: { ca: string; cert: string; key: string };
  /** The port to listen on (a sink configured before the receiver is up); default: a late-bound free one. */
  port?: number;
}

/** Starts rsyslogd (killed when the test ends) in `dir`; resolves once it accepts connections. */
export async function startRsyslogReceiver(t: { after(fn: () => void): void }, dir: string, { tls, port }: ReceiverOptions = {}): Promise<RsyslogReceiver> {
  const listenPort = port ?? await lateBoundPort();
  const out = path.join(dir, 'received.log');
  const conf = path.join(dir, 'rsyslog.conf');
  const global = tls === undefined ? `global(workDirectory="${dir}")`
    : `global(workDirectory="${dir}" DefaultNetstreamDriver="gtls" DefaultNetstreamDriverCAFile="${tls.ca}"
        DefaultNetstreamDriverCertFile="${tls.cert}" DefaultNetstreamDriverKeyFile="${tls.key}")`;
  const module = tls === undefined ? 'module(load="imtcp")'
    : 'module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="x509/certvalid")';
  writeFileSync(conf, `${global}
${module}
input(type="imtcp" address="127.0.0.1" port="${listenPort}")
template(name="fields" type="string"
  string="%pri%|%timereported:::date-rfc3339%|%hostname%|%app-name%|%procid%|%msgid%|%structured-data%|%msg%\\n")
action(type="omfile" file="${out}" template="fields")
`);
  const rsyslog = spawn('rsyslogd', ['-n', '-f', conf, '-i', path.join(dir, 'rsyslog.pid')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  rsyslog.stdout.on('data', (d: Buffer) => { output += d.toString(); });
  rsyslog.stderr.on('data', (d: Buffer) => { output += d.toString(); });
  t.after(() => { rsyslog.kill('SIGKILL'); });
  await waitFor('rsyslog listening', () => new Promise<boolean>((resolve) => {
    const probe = net.connect(listenPort, '127.0.0.1', () => { probe.destroy(); resolve(true); });
    probe.on('error', () => resolve(false));
  }), 10_000).catch((err: Error) => { throw new Error(`${err.message}; rsyslog said: ${output}`); });
  return {
    port: listenPort,
    lines: () => (existsSync(out) ? readFileSync(out, 'utf8').split('\n').filter((l) => l !== '') : []),
    pause: () => rsyslog.kill('SIGSTOP'),
    resume: () => rsyslog.kill('SIGCONT'),
  };
}
