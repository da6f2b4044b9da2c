/**
 * Test certificates, made with the real `openssl` CLI: a CA, a server
 * certificate for 127.0.0.1/localhost, client certificates signed by the CA,
 * and a rogue CA whose certificates must never be trusted.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

export interface Pem {
  cert: string;
  key: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'pipe' });
}

function makeCa(dir: string, name: string): Pem {
  const key = path.join(dir, `${name}-key.pem`);
  const cert = path.join(dir, `${name}.pem`);
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', `/CN=${name}`, '-keyout', key, '-out', cert], dir);
  return { cert, key };
}

/** A leaf certificate signed by `ca`; `san` entries like `DNS:web-1.acme.example` or `IP:127.0.0.1`. */
export function makeLeaf(dir: string, ca: Pem, name: string, cn: string, san: string[], usage: 'serverAuth' | 'clientAuth'): Pem {
  const key = path.join(dir, `${name}-key.pem`);
  const csr = path.join(dir, `${name}.csr`);
  const cert = path.join(dir, `${name}.pem`);
  const ext = path.join(dir, `${name}.ext`);
  writeFileSync(ext, [`extendedKeyUsage=${usage}`, ...(san.length > 0 ? [`subjectAltName=${san.join(',')}`] : [])].join('\n') + '\n');
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', `/CN=${cn}`, '-keyout', key, '-out', csr], dir);
  openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-days', '2', '-extfile', ext, '-out', cert], dir);
  return { cert, key };
}

export interface TestPki {
  ca: Pem;
  server: Pem;
  rogueCa: Pem;
  client(name: string, cn: string, san?: string[]): Pem;
  rogueClient(name: string, cn: string): Pem;
}

export function makePki(dir: string): TestPki {
  const ca = makeCa(dir, 'test-ca');
  const rogueCa = makeCa(dir, 'rogue-ca');
  const server = makeLeaf(dir, ca, 'server', 'localhost', ['DNS:localhost', 'IP:127.0.0.1'], 'serverAuth');
  return {
    ca, server, rogueCa,
    client: (name, cn, san = []) => makeLeaf(dir, ca, name, cn, san, 'clientAuth'),
    rogueClient: (name, cn) => makeLeaf(dir, rogueCa, name, cn, [], 'clientAuth'),
  };
}
