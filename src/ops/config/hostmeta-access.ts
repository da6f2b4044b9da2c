/**
 * Who may call the host metadata service a configuration runs, and for which
 * tenants: the node's tenants, and its admin tokens (whole node or one tenant).
 * Tenant tokens (the agents' credentials) are not among them: agents never
 * write host metadata.
 */
import type { HostmetaAccess } from '../../services/hostmeta/config.js';
import type { SluiceConfig } from './types.js';

export function hostmetaAccess(config: SluiceConfig): HostmetaAccess {
  return { tenants: config.tenants.map((t) => t.id), tokens: config.admin.tokens };
}
