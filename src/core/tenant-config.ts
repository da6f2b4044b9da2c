/**
 * A tenant as configured: how its traffic is recognised (networks, tokens,
 * client certificates) and its limits. identity.ts turns these into the
 * lookups the sources use.
 */
import { sha256Hex } from './access-tokens.js';
import type { TenantLimits } from './limits.js';

export interface CertificateRule {
  /** Which certificate field the pattern is matched against. */
  field: 'cn' | 'san';
  /** Glob: `*` matches any run of characters. */
  pattern: string;
}

export interface TenantConfig {
  id: string;
  /** CIDR blocks (always with a prefix) whose unauthenticated traffic belongs to this tenant. */
  networks: string[];
  /** SHA-256 (hex) of each token that names this tenant. */
  tokenHashes: string[];
  certificates: CertificateRule[];
  limits: TenantLimits;
}

/** Tokens are kept only as SHA-256 hex; `sha256:<hex>` in the file is already that. */
export function tokenHash(token: string): string {
  return token.startsWith('sha256:') ? token.slice(7) : sha256Hex(token);
}
