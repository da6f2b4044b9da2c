/**
 * Who sent a record: the tenant (resolved once per connection, or per peer
 * address for datagrams) and the host key (SHA-1 of tenant and host identity).
 */
import { createHash } from 'node:crypto';
import { isIPv4 } from 'node:net';
import { NetworkTable } from './networks.js';
import type { TenantConfig } from './tenant-config.js';
import { sha256Hex } from './access-tokens.js';
import type { Sink } from './component.js';
import type { LogRecord } from './record.js';
import { TenantLimiter, UNLIMITED, type TenantLimits } from './limits.js';

export class Tenant {
  /** Sinks this tenant's records are routed to, resolved once at start. */
  readonly sinks: Sink[] = [];
  readonly limiter: TenantLimiter;
  /** Open stream connections credited to this tenant (network or certificate), for its connection cap. */
  connections = 0;
  constructor(readonly id: string, limits: TenantLimits = UNLIMITED) {
    this.limiter = new TenantLimiter(limits);
  }
}

/** `::ffff:10.0.0.1` (an IPv4 peer on a dual-stack socket) → `10.0.0.1`. */
export function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
}

/** A client certificate's identity, as the TLS layer reports it after verification. */
export interface PeerCertificate {
  cn: string | null;
  dnsNames: readonly string[];
}

interface CertificateMatcher {
  readonly field: 'cn' | 'san';
  readonly pattern: RegExp;
  readonly tenant: Tenant;
}

/** `*.acme.example` → /^.*\.acme\.example$/i (config-time only; hostnames are case-insensitive). */
function globToRegExp(glob: string): RegExp {
  const escaped = glob.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*');
  return new RegExp(`^${escaped}$`, 'i');
}

export class TenantDirectory {
  readonly tenants = new Map<string, Tenant>();
  /** Overlapping networks resolve by longest prefix. */
  private readonly networks = new NetworkTable<Tenant>();
  private readonly byTokenHash = new Map<string, Tenant>();
  private readonly certificateMatchers: CertificateMatcher[] = [];

  constructor(configs: readonly TenantConfig[]) {
    for (const config of configs) {
      const tenant = new Tenant(config.id, config.limits);
      this.tenants.set(config.id, tenant);
      // A network written as an IPv4-mapped address is the IPv4 network: peers are matched normalized.
      for (const cidr of config.networks) {
        const slash = cidr.indexOf('/');
        this.networks.add(slash < 0 ? normalizeAddress(cidr) : normalizeAddress(cidr.slice(0, slash)) + cidr.slice(slash), tenant);
      }
      for (const hash of config.tokenHashes) this.byTokenHash.set(hash, tenant);
      for (const rule of config.certificates) {
        this.certificateMatchers.push({ field: rule.field, pattern: globToRegExp(rule.pattern), tenant });
      }
    }
  }

  /** Whether any tenant can be named by a token (so traffic from unknown networks may still carry credentials). */
  get acceptsTokens(): boolean {
    return this.byTokenHash.size > 0;
  }

  /** The tenant whose networks contain `address`, or null: unauthenticated traffic from elsewhere is refused. */
  byAddress(address: string): Tenant | null {
    return this.networks.lookup(normalizeAddress(address));
  }

  /** The tenant a token names, or null. Tokens are compared by SHA-256, so no plain token is kept. */
  byToken(token: string): Tenant | null {
    return this.byTokenHash.get(sha256Hex(token)) ?? null;
  }

  /**
   * The tenant and host identity a verified client certificate maps to: the
   * first rule (in config order) that matches its CN or one of its DNS SANs.
   */
  byCertificate(cert: PeerCertificate): { tenant: Tenant; hostIdentity: string } | null {
    for (const matcher of this.certificateMatchers) {
      if (matcher.field === 'cn') {
        if (cert.cn !== null && matcher.pattern.test(cert.cn)) return { tenant: matcher.tenant, hostIdentity: cert.cn };
      } else {
        for (const name of cert.dnsNames) if (matcher.pattern.test(name)) return { tenant: matcher.tenant, hostIdentity: name };
      }
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

/** SD-ID of the element that carries a tenant token; IANA private enterprise number 32473 is reserved for examples. */
export const TOKEN_SD_ID = 'sluice@32473';

export type RefusalReason = 'no_credentials' | 'bad_token' | 'ambiguous_credentials' | 'credential_conflict';

/**
 * Who a connection (or a UDP peer) is, and which tenant each of its records
 * belongs to. Credentials, strongest first: a verified client certificate
 * binds the connection to one tenant and host; a token in the record names a
 * tenant (and must agree with a certificate); otherwise the source network's
 * tenant, if any. A record is never attributed to a tenant other than the
 * one its credentials name: anything ambiguous is refused, never guessed.
 */
export class SessionIdentity {
  /** Why the last call to attribute() returned null. */
  refusal: RefusalReason = 'no_credentials';
  /** Host keys of the tenant this session names most (nearly always its only one); others in `otherHostKeys`, made when first needed. */
  private keysTenant: Tenant | null = null;
  private hostKeys: HostKeyCache | null = null;
  private otherHostKeys: Map<Tenant, HostKeyCache> | null = null;
  private lastToken = '';
  private lastTokenTenant: Tenant | null = null;

  constructor(
    private readonly directory: TenantDirectory,
    /** The tenant of the connection itself (certificate or network), if any. */
    readonly tenant: Tenant | null,
    /** A certificate's host identity; overrides the hostname records carry. */
    private readonly certificateHost: string | null,
  ) {}

  /** Whether this connection could ever carry an acceptable record. */
  get canAuthenticate(): boolean {
    return this.tenant !== null || this.directory.acceptsTokens;
  }

  /** Sets rec.tenant and rec.host and returns the tenant, or returns null (see `refusal`). Removes the token element. */
  attribute(rec: LogRecord, peerAddress: string): Tenant | null {
    let tenant = this.tenant;
    const sd = rec.sd;
    if (sd !== null && Object.hasOwn(sd, TOKEN_SD_ID)) {
      const token = sd[TOKEN_SD_ID]!['token'];
      delete sd[TOKEN_SD_ID];
      if (Object.keys(sd).length === 0) rec.sd = null;
      if (typeof token !== 'string') {
        this.refusal = token === undefined ? 'bad_token' : 'ambiguous_credentials';
        return null;
      }
      const named = this.tokenTenant(token);
      if (named === null) {
        this.refusal = 'bad_token';
        return null;
      }
      if (this.certificateHost !== null && named !== this.tenant) {
        this.refusal = 'credential_conflict';
        return null;
      }
      tenant = named;
    }
    if (tenant === null) {
      this.refusal = 'no_credentials';
      return null;
    }
    const keys = tenant === this.keysTenant ? this.hostKeys! : this.keysOf(tenant);
    rec.tenant = tenant.id;
    rec.host = keys.get(this.certificateHost ?? rec.hostname ?? peerAddress);
    return tenant;
  }

  private keysOf(tenant: Tenant): HostKeyCache {
    if (this.keysTenant === null) {
      this.keysTenant = tenant;
      return (this.hostKeys = new HostKeyCache(tenant.id));
    }
    this.otherHostKeys ??= new Map();
    let keys = this.otherHostKeys.get(tenant);
    if (keys === undefined) {
      keys = new HostKeyCache(tenant.id);
      this.otherHostKeys.set(tenant, keys);
    }
    return keys;
  }

  /** Agents send the same token on every record: remember the last one. */
  private tokenTenant(token: string): Tenant | null {
    if (token !== this.lastToken) {
      this.lastToken = token;
      this.lastTokenTenant = this.directory.byToken(token);
    }
    return this.lastTokenTenant;
  }
}
