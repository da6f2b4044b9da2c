/** The resolved configuration of the admin server. */

export interface AdminTokenConfig {
  /** SHA-256 (hex) of the token. */
  tokenHash: string;
  /** The one tenant the token may see and change; null: the whole node. */
  tenant: string | null;
}

export interface AdminConfig {
  enabled: boolean;
  address: string;
  port: number;
  tokens: AdminTokenConfig[];
  /** Loopback callers read the dashboard, metrics and lists without a token. */
  openLoopbackReads: boolean;
  /** Tenants with metric series of their own (the rest share `other`). */
  tenantSeries: number;
  /** Live tails open at once on the node. */
  tailSlots: number;
  /** The part of tailSlots one tenant's scoped tokens may hold together (and that scoped tokens leave free for whole-node ones). */
  tenantTailShare: number;
  /** Names (besides the listen address and loopback) a request's Host header may give: what DNS rebinding cannot forge. */
  hosts: string[];
}
