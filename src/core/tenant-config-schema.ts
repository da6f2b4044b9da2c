/** The schema of the tenants, TenantConfig (tenant-config.ts). */
import { Type } from '@sinclair/typebox';
import { duration, FORMAT_CIDR, idMap, section, size, TOKEN_EXPECTED, TOKEN_PATTERN } from './config-schema.js';
import { UNLIMITED } from './limits.js';

const tenantProperties = {
  networks: Type.Array(
    Type.String({
      format: FORMAT_CIDR,
      'x-expected': 'a CIDR block such as 10.0.0.0/8 or 2001:db8::/32, or a single address',
    }),
    {
      description:
        'CIDR blocks whose unauthenticated traffic belongs to this tenant; a bare address means /32 (IPv4) or /128 (IPv6).',
      default: [],
      'x-type': 'list of CIDR blocks',
      'x-expected': 'a list of CIDR blocks such as [10.0.0.0/8, "2001:db8::/32"]',
    },
  ),
  tokens: Type.Array(
    Type.String({
      minLength: 16,
      pattern: TOKEN_PATTERN,
      'x-expected': TOKEN_EXPECTED,
    }),
    {
      description:
        'Secrets that name this tenant: an HTTP bearer token, or `token` in a syslog SD element `[sluice@32473 token="…"]` (removed before the record is stored). Write either the token itself or `sha256:<hex>` of it; only the hash is kept in memory.',
      default: [],
      'x-type': 'list of tokens',
      'x-expected': 'a list of tokens',
    },
  ),
  certificates: Type.Array(
    Type.Union([
      Type.Object({ cn: Type.String({ minLength: 1 }) }, { additionalProperties: false }),
      Type.Object({ san: Type.String({ minLength: 1 }) }, { additionalProperties: false }),
    ], { 'x-expected': 'a rule with either cn: <pattern> or san: <pattern>' }),
    {
      description:
        'Client certificates (verified against `sources.syslog_tls.client_ca`) that belong to this tenant: `{cn: <pattern>}` matches the subject CN, `{san: <pattern>}` any DNS subject alternative name; `*` in a pattern matches any characters. The value that matched is the host identity.',
      default: [],
      'x-type': 'list of certificate rules',
      'x-expected': 'a list of rules such as [{cn: "*.acme.example"}, {san: "web-*.acme.example"}]',
    },
  ),
  limits: section(
    {
      messages_per_second: Type.Number({
        description: 'Messages per second this tenant may send, all its agents together; 0 means no limit. Over it, stream senders are slowed (reads pause) and datagrams dropped (counted).',
        default: UNLIMITED.messagesPerSecond,
        minimum: 0,
      }),
      bytes_per_second: size(UNLIMITED.bytesPerSecond, 'Bytes per second (frame sizes) this tenant may send; 0 means no limit.'),
      burst: duration(UNLIMITED.burstMs, 'How far a quiet tenant may run ahead of its rates, as time at those rates.'),
      max_connections: Type.Integer({ description: 'Stream connections (TCP, TLS, RELP) this tenant may hold open at once on the node (all listeners, all workers); past it new ones are refused and counted. 0: no cap.', default: UNLIMITED.maxConnections, minimum: 0 }),
    },
    "The tenant's rate limits; changeable at runtime.",
  ),
};

/** `tenants` in the YAML configuration: tenants by id. */
export const TenantsSchema = idMap(section(tenantProperties, 'One tenant.'), {
  description:
    'The tenants, by id. Giving `tenants` replaces the default tenant entirely; at least one tenant is needed.',
  default: { default: { networks: ['127.0.0.0/8', '::1/128'] } },
  key: 'id',
  keyNoun: 'a tenant id',
  'x-type': 'mapping of tenant id to tenant',
  'x-expected': 'a mapping of tenant ids to tenant settings, with at least one tenant',
});
