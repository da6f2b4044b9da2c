/**
 * Who sent a record: the tenant (resolved once per connection, or per peer
 * address for datagrams) and the host key (SHA-1 of tenant and host identity).
 */
import { createHash } from 'node:crypto';
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import type { TenantConfig } from '../ops/config/types.js';
import type { Sink } from './component.js';

export class Tenant {
  /** Sinks this tenant's records are routed to, resolved once at start. */
  readonly sinks: Sink[] = [];
  constructor(readonly id: string) {}
}

interface NetworkRule {
  readonly prefix: number;
  readonly match: BlockList;
  readonly tenant: Tenant;
}

/** `::ffff:10.0.0.1` (an IPv4 peer on a dual-stack socket) → `10.0.0.1`. */
export function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
}

export class TenantDirectory {
  readonly tenants = new Map<string, Tenant>();
  /** Most specific network first, so overlapping rules resolve by longest prefix. */
  private readonly rules: NetworkRule[] = [];

  constructor(configs: readonly TenantConfig[]) {
    for (const config of configs) {
      const tenant = new Tenant(config.id);
      this.tenants.set(config.id, tenant);
      for (const cidr of config.networks) {
        const slash = cidr.indexOf('/');
        const address = normalizeAddress(slash < 0 ? cidr : cidr.slice(0, slash));
        const family = isIPv6(address) ? 'ipv6' : 'ipv4';
        const prefix = slash < 0 ? (family === 'ipv6' ? 128 : 32) : Number(cidr.slice(slash + 1));
        const match = new BlockList();
        match.addSubnet(address, prefix, family);
        this.rules.push({ prefix, match, tenant });
      }
    }
    this.rules.sort((a, b) => b.prefix - a.prefix);
  }

  /** The tenant whose networks contain `address`, or null: unauthenticated traffic from elsewhere is refused. */
  byAddress(address: string): Tenant | null {
    const normalized = normalizeAddress(address);
    const family = isIPv6(normalized) ? 'ipv6' : 'ipv4';
    for (const rule of this.rules) {
      if (rule.match.check(normalized, family)) return rule.tenant;
    }
    return null;
  }
}

export function hostKey(tenant: string, hostIdentity: string): string {
  return createHash('sha1').update(tenant).update('\n').update(hostIdentity).digest('hex');
}

/**
 * Host keys by hostname for one tenant. Hostnames repeat on a connection, so
 * this turns a SHA-1 per record into a map lookup. Bounded: cleared when full.
 */
export class HostKeyCache {
  private readonly keys = new Map<string, string>();

  constructor(private readonly tenant: string, private readonly capacity = 1024) {}

  /** Hostnames are case-insensitive, so the identity is lowercased before hashing. */
  get(hostIdentity: string): string {
    let key = this.keys.get(hostIdentity);
    if (key === undefined) {
      if (this.keys.size >= this.capacity) this.keys.clear();
      key = hostKey(this.tenant, hostIdentity.toLowerCase());
      this.keys.set(hostIdentity, key);
    }
    return key;
  }
}
