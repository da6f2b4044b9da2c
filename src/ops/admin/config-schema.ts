/** The schema of the admin server, AdminConfig (config.ts). */
import { Type } from '@sinclair/typebox';
import { address, ID_PATTERN, port, section, TOKEN_EXPECTED, TOKEN_PATTERN } from '../../core/config-schema.js';

/** `admin` in the YAML configuration. */
export const AdminSchema = section(
  {
    enabled: Type.Boolean({ description: 'Serve the dashboard, `/metrics`, `/healthz`, `/readyz` and the admin API (see admin.md).', default: true }),
    address: address('Address the admin server binds to. Keep it on loopback unless every admin token is strong and the network is trusted.'),
    port: port('Admin server port; 0 picks a free port.', 8080),
    tokens: Type.Array(
      Type.Object({
        token: Type.String({
          minLength: 16,
          pattern: TOKEN_PATTERN,
          description: 'The token itself or `sha256:<hex>` of it; only the hash is kept in memory.',
          'x-expected': TOKEN_EXPECTED,
        }),
        tenant: Type.Union([Type.String({ pattern: ID_PATTERN }), Type.Null()], {
          description: 'Scope the token to one tenant: it sees only that tenant\'s sessions, records and metrics, may change only its limits, and reaches only its hosts\' metadata. `null`: the whole node.',
          default: null,
          'x-expected': 'a tenant id, or null',
        }),
      }, { additionalProperties: false, 'x-expected': 'a mapping with token and optionally tenant' }),
      {
        description:
          'Bearer tokens of the admin API and of the host metadata API (`Authorization: Bearer <token>`), each for the whole node or one tenant. With none, the node writes a whole-node token to `<data_dir>/admin-token` (mode 0600) at first start.',
        default: [],
        'x-type': 'list of {token, tenant}',
        'x-expected': 'a list such as [{token: sha256:…}, {token: sha256:…, tenant: acme}]',
      },
    ),
    open_loopback_reads: Type.Boolean({
      description: 'Let callers on loopback read the dashboard, `/metrics` and the session and component lists without a token (live tails and every change still need one).',
      default: true,
    }),
    tail_slots: Type.Integer({
      description: 'Live tails (`/api/tail`, `sluice tail`, the dashboard\'s session tail) open at once on the node; each costs an encode per matching record.',
      default: 32, minimum: 1, maximum: 1024,
    }),
    tenant_tail_share: Type.Number({
      description: 'The share of `tail_slots` one tenant\'s scoped tokens may hold together (rounded down, at least 1); tenant-scoped tails together leave as many free for whole-node tokens, so the node\'s operators always find one.',
      default: 0.25, exclusiveMinimum: 0, maximum: 0.5,
    }),
    hosts: Type.Array(Type.String({ minLength: 1, pattern: '^[A-Za-z0-9.:\\[\\]-]+$' }), {
      description: 'Host names (or addresses) the admin server answers to besides its listen address, `localhost`, 127.0.0.1 and ::1: a request whose `Host` header names anything else is refused (421), which keeps a web page from reaching the admin server through DNS rebinding. List the names operators type in their browser when the server listens beyond loopback.',
      default: [],
      'x-type': 'list of host names',
      'x-expected': 'a list such as [sluice-1.internal, 10.0.0.5]',
    }),
    tenant_series: Type.Integer({
      description: 'Tenants (in configuration order) that get metric series of their own; the rest are counted under `tenant="other"`, so a node with many tenants keeps a bounded number of series.',
      default: 100, minimum: 0, maximum: 10000,
    }),
  },
  'The admin server: dashboard, metrics, health and the admin API (see admin.md).',
);
