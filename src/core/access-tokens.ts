/**
 * Bearer tokens of the node's HTTP APIs (the admin server, the host metadata
 * service): each token reaches the whole node or one tenant. Only SHA-256
 * hashes are kept in memory; a token is looked up by the hash of what a
 * request carries.
 *
 * With no token configured, a whole-node token is generated once into
 * `<data_dir>/admin-token` (mode 0600) and kept across restarts; the host
 * metadata service's own client credential is generated the same way.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** A token as configured: its SHA-256 (hex) and the one tenant it may reach (null: every tenant, the whole node). */
export interface ScopedToken {
  tokenHash: string;
  tenant: string | null;
}

/** The file, under the data dir, of the whole-node token generated when none is configured. */
export const ADMIN_TOKEN_FILE = 'admin-token';

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Who a request's `Authorization` header names, or why nobody. */
export type Bearer =
  | { ok: true; tenant: string | null }
  /** `missing`: no header; `unknown`: not `Bearer <token>` of a known token; `ambiguous`: more than one header. */
  | { ok: false; reason: 'missing' | 'unknown' | 'ambiguous' };

const BEARER = /^Bearer +(\S+)$/i;

export class AccessTokens {
  private readonly byHash = new Map<string, string | null>();

  constructor(tokens: Iterable<ScopedToken>) {
    for (const token of tokens) this.byHash.set(token.tokenHash, token.tenant);
  }

  get size(): number {
    return this.byHash.size;
  }

  /**
   * Who the request's `Authorization` headers (every one it carries, as
   * `IncomingMessage.headersDistinct` lists them: Node's `headers` keeps only
   * the first) name. Two headers are refused rather than one of them picked,
   * as syslog refuses two tokens in one record (`ambiguous_credentials`).
   */
  identify(authorization: readonly string[] | undefined): Bearer {
    if (authorization === undefined || authorization.length === 0) return { ok: false, reason: 'missing' };
    if (authorization.length > 1) return { ok: false, reason: 'ambiguous' };
    const match = BEARER.exec(authorization[0]!);
    const tenant = match === null ? undefined : this.byHash.get(sha256Hex(match[1]!));
    return tenant === undefined ? { ok: false, reason: 'unknown' } : { ok: true, tenant };
  }
}

/**
 * The token kept in `file`; when there is none, a random one is written there
 * first (mode 0600, never replacing a file another process wrote meanwhile).
 */
export function readOrCreateToken(file: string): { token: string; created: boolean } {
  try {
    return { token: readToken(file), created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const token = randomBytes(24).toString('base64url');
  mkdirSync(path.dirname(file), { recursive: true });
  try {
    writeFileSync(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return { token: readToken(file), created: false };
    throw err;
  }
  return { token, created: true };
}

/** The token in `file` (its first line, trimmed); throws when the file is missing, unreadable or empty. */
export function readToken(file: string): string {
  const token = readFileSync(file, 'utf8').trim();
  if (token === '') throw new Error(`${file} is empty`);
  return token;
}

/**
 * The whole-node and tenant tokens of the node's APIs: the configured ones,
 * or else the generated whole-node token in `<dataDir>/admin-token`
 * (`generatedFile`; `created` on the start that wrote it).
 */
export function adminTokens(configured: readonly ScopedToken[], dataDir: string):
{ tokens: ScopedToken[]; generatedFile: string | null; created: boolean } {
  if (configured.length > 0) return { tokens: [...configured], generatedFile: null, created: false };
  const file = path.resolve(dataDir, ADMIN_TOKEN_FILE);
  const { token, created } = readOrCreateToken(file);
  return { tokens: [{ tokenHash: sha256Hex(token), tenant: null }], generatedFile: file, created };
}
