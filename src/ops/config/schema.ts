/**
 * The YAML configuration as a user writes it: snake_case keys, durations and
 * sizes in human units, every key optional. TypeBox builds plain JSON Schema
 * (draft 2020-12 compatible), so the same object drives validation (load.ts),
 * the reference documentation (docs.ts) and, exported, editor completion.
 *
 * Rules every schema node here follows:
 * - every property has a `description` (it becomes the documentation);
 * - every leaf has a `default`; objects default to `{}` so their own leaves
 *   fill in; the two maps (`tenants`, `sinks`) default to a complete entry;
 * - every object is closed (`additionalProperties: false`); a map takes any
 *   key through `patternProperties` and checks it with `propertyNames`, so an
 *   entry under a bad key is still validated (all problems at once).
 *
 * Besides standard keywords, nodes carry a few annotations (registered with
 * Ajv as annotation-only keywords, see {@link ANNOTATION_KEYWORDS}):
 * - `x-expected`: what a valid value looks like, in plain words, used in
 *   problem messages ("expected <x-expected>");
 * - `x-type`: the type name the documentation shows; the values `duration`
 *   and `size` also tell the loader to parse the value into ms or bytes;
 * - `x-min-bytes` / `x-max-bytes`: the range of a size, checked after parsing;
 * - `x-key`: for a map, the placeholder for its keys in documentation (`id`);
 * - `x-key-expected`: for a map, what a valid key looks like.
 * Two formats are used and registered with Ajv by the loader: `ip-or-localhost`
 * and `cidr`.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';

export const ANNOTATION_KEYWORDS = [
  'x-expected',
  'x-type',
  'x-min-bytes',
  'x-max-bytes',
  'x-key',
  'x-key-expected',
] as const;

/** Tenant ids and sink names: they become folder names. */
export const ID_PATTERN = '^[a-z0-9][a-z0-9_-]{0,62}$';
export const ID_EXPECTED =
  '1 to 63 characters of a-z, 0-9, "_" and "-", starting with a letter or a digit';

/** Tokens travel inside SD-PARAM values and HTTP headers: printable ASCII without space, quote or backslash. */
export const TOKEN_PATTERN = '^(sha256:[0-9a-f]{64}|[\\x21\\x23-\\x5b\\x5d-\\x7e]+)$';

/** `<number><unit>`; a bare number (seconds) is the other branch of the union. */
export const DURATION_PATTERN = '^(\\d+(?:\\.\\d+)?)(ms|s|m|h|d)$';
export const DURATION_EXPECTED = 'a duration such as 10s, 500ms or 1h';
export const DURATION_UNITS_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** `<number><unit>`; a bare integer (bytes) is the other branch of the union. */
export const SIZE_PATTERN = '^(\\d+(?:\\.\\d+)?)(B|KB|MB|GB|KiB|MiB|GiB)$';
export const SIZE_EXPECTED = 'a size such as 64KiB, 100MiB or a number of bytes';
export const SIZE_UNITS_BYTES: Readonly<Record<string, number>> = {
  B: 1,
  KB: 1000,
  MB: 1000 ** 2,
  GB: 1000 ** 3,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
};

/** The formats the loader registers with Ajv. */
export const FORMAT_IP_OR_LOCALHOST = 'ip-or-localhost';
export const FORMAT_CIDR = 'cidr';

function duration(def: string, description: string) {
  return Type.Union([Type.Number({ minimum: 0 }), Type.String({ pattern: DURATION_PATTERN })], {
    description,
    default: def,
    'x-type': 'duration',
    'x-expected': DURATION_EXPECTED,
  });
}

function size(def: string, description: string, range?: { min: number; minText: string; max: number; maxText: string }) {
  return Type.Union([Type.Integer({ minimum: 0 }), Type.String({ pattern: SIZE_PATTERN })], {
    description,
    default: def,
    'x-type': 'size',
    'x-expected': range ? `a size from ${range.minText} to ${range.maxText}, such as ${def}` : SIZE_EXPECTED,
    ...(range ? { 'x-min-bytes': range.min, 'x-max-bytes': range.max } : {}),
  });
}

function address(description: string) {
  return Type.String({
    description,
    default: '127.0.0.1',
    format: FORMAT_IP_OR_LOCALHOST,
    'x-type': 'IP address or `localhost`',
    'x-expected': 'an IPv4 or IPv6 address such as 127.0.0.1, 0.0.0.0 or ::1, or "localhost"',
  });
}

function port(description: string) {
  return Type.Integer({ description, default: 5514, minimum: 0, maximum: 65535 });
}

/** A closed object whose properties are all optional (each has a default). */
function section<P extends Record<string, TSchema>>(properties: P, description: string) {
  return Type.Partial(Type.Object(properties), {
    description,
    default: {},
    additionalProperties: false,
  });
}

/** The object a closed section's leaf defaults add up to. */
function leafDefaults(properties: Record<string, TSchema>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(properties).map(([key, schema]) => [key, structuredClone(schema.default)]));
}

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/** Syslog facilities a node's own log may use (RFC 5424 codes in log-output.ts). */
export const LOG_FACILITIES = ['user', 'daemon', 'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7'] as const;

/** RFC 5424 facility codes of {@link LOG_FACILITIES}. */
export const FACILITY_CODES: Readonly<Record<(typeof LOG_FACILITIES)[number], number>> = {
  user: 1, daemon: 3, local0: 16, local1: 17, local2: 18, local3: 19, local4: 20, local5: 21, local6: 22, local7: 23,
};

export const LogSchema = section(
  {
    level: Type.Union(
      LOG_LEVELS.map((level) => Type.Literal(level)),
      {
        description: 'Least severe level the node logs about itself; `silent` turns its own logging off.',
        default: 'info',
      },
    ),
    output: Type.Union([Type.Literal('stderr'), Type.Literal('syslog')], {
      description: 'Where the log goes: `stderr` (one JSON object per line, written synchronously) or `syslog` (RFC 5424 messages to the receiver under `syslog`; see docs/logging.md).',
      default: 'stderr',
    }),
    syslog: section(
      {
        protocol: Type.Union([Type.Literal('udp'), Type.Literal('tcp')], {
          description: '`udp` (RFC 5426) or `tcp` (RFC 6587 octet counting). A local socket such as /dev/log cannot be used: Node.js has no Unix datagram sockets; point this at the local syslog daemon\'s UDP or TCP input instead.',
          default: 'udp',
        }),
        host: Type.String({ description: 'Receiver host name or address.', default: '127.0.0.1', minLength: 1 }),
        port: Type.Integer({ description: 'Receiver port; 0 means 514.', default: 0, minimum: 0, maximum: 65535 }),
        facility: Type.Union(LOG_FACILITIES.map((f) => Type.Literal(f)), { description: 'Syslog facility of every message.', default: 'daemon' }),
        app_name: Type.String({
          description: 'RFC 5424 APP-NAME of every message.', default: 'sluice', pattern: '^[\\x21-\\x7e]{1,48}$',
          'x-expected': '1 to 48 printable ASCII characters without spaces',
        }),
        max_message: size('8KiB', 'Longer messages are cut (on a character boundary). From 480 to 65507 bytes (the largest UDP payload).', {
          min: 480, minText: '480 bytes', max: 65_507, maxText: '65507 bytes',
        }),
        max_queue: size('1MiB', 'Log bytes held while the receiver is connecting, away or slow; past it lines are dropped and counted (`sluice_log_dropped_lines_total`), never waited for. From 64KiB to 64MiB.', {
          min: 65_536, minText: '64KiB', max: 67_108_864, maxText: '64MiB',
        }),
      },
      'The syslog receiver, used when `output` is `syslog`.',
    ),
  },
  "The node's own log (docs/logging.md).",
);

export const SyslogUdpSchema = section(
  {
    enabled: Type.Boolean({ description: 'Listen for syslog messages over UDP.', default: true }),
    address: address('Address the UDP socket binds to: an IPv4 or IPv6 literal, or `localhost`.'),
    port: port('UDP port; 0 picks a free port (useful in tests).'),
    receive_buffer: size('4MiB', 'Socket receive buffer (SO_RCVBUF); 0 keeps the operating system default.'),
  },
  'Syslog over UDP.',
);

/** What every stream listener (syslog TCP and TLS, RELP) bounds per connection. */
function connectionBoundProperties() {
  return {
    max_connections: Type.Integer({ description: 'Connections this listener holds at once; past it new ones are refused and counted. 0: no cap.', default: 50000, minimum: 0 }),
    idle_timeout: duration('0s', 'A connection that sends nothing for this long is closed and counted; 0 keeps idle agents connected for ever.'),
    frame_timeout: duration('30s', 'A frame begun and not completed within this long closes its connection (slowloris); 0: never.'),
  };
}

/** What every syslog stream listener (TCP, TLS) bounds per connection. */
function streamConnectionProperties() {
  return {
    max_frame: size(
      '64KiB',
      'Longest message frame accepted; a longer frame closes its connection. From 64 bytes to 16MiB.',
      { min: 64, minText: '64B', max: 16 * 1024 ** 2, maxText: '16MiB' },
    ),
    ...connectionBoundProperties(),
  };
}

export const SyslogTcpSchema = section(
  {
    enabled: Type.Boolean({ description: 'Listen for syslog messages over TCP.', default: true }),
    address: address('Address the TCP listener binds to: an IPv4 or IPv6 literal, or `localhost`.'),
    port: port('TCP port; 0 picks a free port (useful in tests).'),
    ...streamConnectionProperties(),
  },
  'Syslog over TCP.',
);

const optionalPath = (description: string) =>
  Type.Union([Type.String({ minLength: 1 }), Type.Null()], {
    description,
    default: null,
    'x-type': 'file path or null',
    'x-expected': 'a file path, or null',
  });

export const SyslogTlsSchema = section(
  {
    address: address('Address the TLS listener binds to: an IPv4 or IPv6 literal, or `localhost`.'),
    port: Type.Integer({ description: 'TLS port; 0 picks a free port (useful in tests).', default: 6514, minimum: 0, maximum: 65535 }),
    certificate: optionalPath('PEM file with the server certificate (and chain). The TLS listener runs when `certificate` and `key` are both set.'),
    key: optionalPath('PEM file with the private key of `certificate`.'),
    client_ca: optionalPath('PEM file of the CA(s) that sign client certificates; with it, clients can authenticate with a certificate (mTLS).'),
    client_certificates: Type.Union([Type.Literal('none'), Type.Literal('request'), Type.Literal('require')], {
      description:
        '`none`: no client certificate is asked for; `request`: asked for, a connection without one is identified by its network or tokens; `require`: a connection without a valid certificate is refused. Needs `client_ca` unless `none`.',
      default: 'none',
    }),
    ...streamConnectionProperties(),
  },
  'Syslog over TLS (RFC 5425).',
);

export const HttpSourceSchema = section(
  {
    enabled: Type.Boolean({ description: 'Accept OTLP/HTTP logs (`POST /v1/logs`) and newline-delimited records (`POST /v1/ingest`).', default: true }),
    address: address('Address the HTTP listener binds to.'),
    port: Type.Integer({ description: 'HTTP port (4318, the OTLP/HTTP standard port); 0 picks a free port.', default: 4318, minimum: 0, maximum: 65535 }),
    max_body: size('4MiB', 'Largest request body, also once decompressed; larger: HTTP 413.'),
    max_records: Type.Integer({ description: 'Records one request may carry; more: HTTP 413. A record costs a few hundred bytes of memory however few bytes it takes in the body, so this bounds what one request makes the node hold.', default: 100000, minimum: 1 }),
    ack_timeout: duration('30s', 'Longest a request waits for its records to be committed; then it is answered 503 and the client retries.'),
    max_connections: Type.Integer({ description: 'Connections this listener holds at once; past it new ones are closed at accept and counted. 0: no cap.', default: 50000, minimum: 0 }),
    request_timeout: duration('30s', 'Longest a client may take to send a whole request, headers and body (slowloris); then it is answered 408. 0: never.'),
  },
  'Logs over HTTP: OTLP and newline-delimited JSON or text (see http.md).',
);

export const RelpSourceSchema = section(
  {
    enabled: Type.Boolean({ description: 'Accept RELP, the acknowledged protocol of rsyslog\'s omrelp: a message is answered 200 only once committed.', default: true }),
    address: address('Address the RELP listener binds to.'),
    port: Type.Integer({ description: 'RELP port; 0 picks a free port.', default: 2514, minimum: 0, maximum: 65535 }),
    max_frame: size('128KiB', 'Largest message a RELP frame may carry; a larger one closes its connection. From 64 bytes to 16MiB.',
      { min: 64, minText: '64B', max: 16 * 1024 ** 2, maxText: '16MiB' }),
    window: Type.Integer({ description: 'Unanswered messages a session may have before the node stops reading it (librelp\'s default window is 128).', default: 128, minimum: 1, maximum: 65536 }),
    drain_timeout: duration('2s', 'On shutdown, how long sessions get to have their messages committed and answered before serverclose.'),
    ...connectionBoundProperties(),
  },
  'RELP (see relp.md).',
);

export const SourcesSchema = section(
  {
    syslog_udp: SyslogUdpSchema,
    syslog_tcp: SyslogTcpSchema,
    syslog_tls: SyslogTlsSchema,
    relp: RelpSourceSchema,
    http: HttpSourceSchema,
  },
  'Where log records come from.',
);

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
      'x-expected': 'a token of at least 16 printable characters without spaces, quotes or backslashes, or sha256:<64 hex digits>',
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
        default: 0,
        minimum: 0,
      }),
      bytes_per_second: size('0B', 'Bytes per second (frame sizes) this tenant may send; 0 means no limit.'),
      burst: duration('1s', 'How far a quiet tenant may run ahead of its rates, as time at those rates.'),
      max_connections: Type.Integer({ description: 'Stream connections (TCP, TLS, RELP) this tenant may hold open at once, per listener; past it new ones are refused and counted. 0: no cap.', default: 0, minimum: 0 }),
    },
    "The tenant's rate limits; changeable at runtime.",
  ),
};

export const TenantSchema = section(tenantProperties, 'One tenant.');

export const TenantsSchema = Type.Record(Type.String(), TenantSchema, {
  description:
    'The tenants, by id. Giving `tenants` replaces the default tenant entirely; at least one tenant is needed.',
  default: { default: { networks: ['127.0.0.0/8', '::1/128'] } },
  minProperties: 1,
  propertyNames: { pattern: ID_PATTERN },
  additionalProperties: false,
  'x-key': 'id',
  'x-key-expected': `a tenant id of ${ID_EXPECTED}`,
  'x-type': 'mapping of tenant id to tenant',
  'x-expected': 'a mapping of tenant ids to tenant settings, with at least one tenant',
});

const syslogSinkSection = section(
  {
    protocol: Type.Union([Type.Literal('udp'), Type.Literal('tcp'), Type.Literal('tls')], {
      description: '`udp` (RFC 5426: never waits, drops and counts when the socket is full), `tcp` (RFC 6587 octet counting) or `tls` (RFC 5425).',
      default: 'udp',
    }),
    host: Type.String({ description: 'Receiver host name or address.', default: '127.0.0.1', minLength: 1 }),
    port: Type.Integer({ description: 'Receiver port; 0 means the protocol\'s standard port (514, or 6514 for TLS).', default: 0, minimum: 0, maximum: 65535 }),
    format: Type.Union([Type.Literal('rfc5424'), Type.Literal('rfc3164')], { description: 'Message format.', default: 'rfc5424' }),
    max_message: size('8KiB', 'Longer messages are cut (on a character boundary) and counted.'),
    identity_sd_id: Type.Union([Type.String({ pattern: '^[\\x21-\\x7e]{1,32}$' }), Type.Null()], {
      description: 'SD-ID of an element with the record\'s tenant and host key added to every RFC 5424 message; `null`: none.',
      default: null,
      'x-type': 'SD-ID or null',
      'x-expected': 'an SD-ID such as sluice@32473, or null',
    }),
    tls: section(
      {
        ca: optionalPath('PEM file of the CA(s) the receiver\'s certificate must chain to; `null`: the system\'s CAs.'),
        certificate: optionalPath('PEM client certificate, for receivers that ask for one.'),
        key: optionalPath('PEM key of `certificate`.'),
        server_name: Type.Union([Type.String({ minLength: 1 }), Type.Null()], {
          description: 'Name the receiver\'s certificate must carry; `null`: `host`.', default: null, 'x-type': 'string or null', 'x-expected': 'a host name, or null',
        }),
      },
      'TLS settings (protocol `tls`).',
    ),
  },
  'Settings of a `type: syslog` sink: forwarding to a syslog receiver.',
);

const natsSinkSection = section(
  {
    servers: Type.Array(Type.String({ minLength: 1 }), {
      description: 'NATS servers (`nats://host:port`); the client fails over between them.', default: ['nats://127.0.0.1:4222'], minItems: 1,
      'x-type': 'list of URLs', 'x-expected': 'a non-empty list of nats:// URLs',
    }),
    stream: Type.String({ description: 'JetStream stream the records go to.', default: 'SLUICE_LOGS', pattern: '^[A-Za-z0-9_-]{1,64}$', 'x-expected': 'a stream name of letters, digits, "_" and "-"' }),
    subject_prefix: Type.String({ description: 'Records are published to `<subject_prefix>.<tenant>.<host key>`.', default: 'logs', pattern: '^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$', 'x-expected': 'dot-separated subject tokens such as logs' }),
    create_stream: Type.Boolean({ description: 'Create the stream (subjects `<subject_prefix>.>`) when it does not exist.', default: true }),
    duplicate_window: duration('2m', 'De-duplication window of a created stream: a re-publish within it is stored once.'),
    replicas: Type.Integer({ description: 'Copies a created stream keeps, each on another server of the JetStream cluster: 3 in a 3-server cluster, so a server can die without losing or blocking the stream (see cluster.md).', default: 1, minimum: 1, maximum: 5 }),
    max_in_flight: Type.Integer({ description: 'Publishes awaiting their JetStream acknowledgement at once.', default: 1024, minimum: 1, maximum: 65536 }),
    publish_timeout: duration('5s', 'Longest a publish waits for its acknowledgement before the batch is retried.'),
    user: Type.Union([Type.String(), Type.Null()], { description: 'User name, or null.', default: null, 'x-type': 'string or null', 'x-expected': 'a string, or null' }),
    password: Type.Union([Type.String(), Type.Null()], { description: 'Password, or null.', default: null, 'x-type': 'string or null', 'x-expected': 'a string, or null' }),
    token: Type.Union([Type.String(), Type.Null()], { description: 'Authentication token, or null.', default: null, 'x-type': 'string or null', 'x-expected': 'a string, or null' }),
  },
  'Settings of a `type: nats` sink: NATS JetStream, the shared bus.',
);

const fileSinkProperties = {
  type: Type.Union([Type.Literal('file'), Type.Literal('syslog'), Type.Literal('nats')], {
    description: 'Kind of sink: `file` (NDJSON per tenant), `syslog` (forwarding; settings under `syslog`) or `nats` (JetStream; settings under `nats`). The keys from `path` to `fsync_interval` apply to `file` sinks only.',
    default: 'file',
  }),
  tenants: Type.Array(Type.String({ 'x-expected': 'a tenant id or "*"' }), {
    description: 'Tenants whose records this sink receives, by id; `"*"` means every tenant.',
    default: ['*'],
    minItems: 1,
    'x-type': 'list of tenant ids or `"*"`',
    'x-expected': 'a non-empty list of tenant ids or "*"',
  }),
  path: Type.Union([Type.String({ minLength: 1 }), Type.Null()], {
    description:
      'Folder the files go to, as `<path>/<tenant>/`; a relative path is relative to the working directory. `null` means `<data_dir>/logs`.',
    default: null,
    'x-type': 'string or null',
    'x-expected': 'a folder path, or null for <data_dir>/logs',
  }),
  rotate_size: size('100MiB', 'A file is rotated once it reaches this size.'),
  rotate_interval: duration('1h', 'A file is rotated once it is this old; 0 turns rotation by time off.'),
  max_files: Type.Integer({
    description: 'Rotated files kept per tenant; 0 keeps all.',
    default: 0,
    minimum: 0,
  }),
  batch_size: size('256KiB', 'Encoded bytes buffered before a write is issued.'),
  batch_delay: duration('10ms', 'Longest a record waits in the batch before it is written.'),
  queue_high_water: size('8MiB', 'Bytes queued for this sink above which the sources are asked to slow down.'),
  fsync_interval: duration('20ms', 'Records from acknowledged protocols are acknowledged once fsync\'d; their fsyncs are grouped, at most one per this interval per file.'),
  syslog: syslogSinkSection,
  nats: natsSinkSection,
  buffer: section(
    {
      type: Type.Union([Type.Literal('memory'), Type.Literal('disk')], {
        description: '`memory`: the sink\'s own bounded queue only. `disk`: records are acknowledged once fsync\'d to an on-disk buffer under `<data_dir>/buffers/<sink>/`, and leave it once the sink has committed them, so a sink that is down (or a node that is killed) loses nothing acknowledged. See disk-buffer.md.',
        default: 'memory',
      }),
      max_size: size('1GiB', 'Disk buffer: most bytes it holds on disk.'),
      when_full: Type.Union([Type.Literal('block'), Type.Literal('drop_newest')], {
        description: 'Disk buffer, when full: `block` (sources are slowed; a batch that finds no room within `block_timeout` is refused) or `drop_newest` (the new batch is refused at once). Refusals are counted in `sluice_buffer_dropped_records_total`; acknowledged protocols see them as failures.',
        default: 'block',
      }),
      block_timeout: duration('30s', 'Disk buffer with `block`: longest a batch waits for room.'),
    },
    'Optional disk buffer in front of this sink.',
  ),
};

export const FileSinkSchema = section(fileSinkProperties, 'A sink writing one file per tenant.');

/**
 * Only one sink type exists. When another arrives, `SinkSchema` becomes a
 * union discriminated by `type` (note: Ajv applies defaults inside `oneOf` /
 * `anyOf` branches only with care, so entries may need an if/then layout).
 */
export const SinkSchema = FileSinkSchema;

export const SinksSchema = Type.Record(Type.String(), SinkSchema, {
  description:
    'The sinks, by name. Giving `sinks` replaces the default sink entirely; at least one sink is needed.',
  default: { files: leafDefaults(fileSinkProperties) },
  minProperties: 1,
  propertyNames: { pattern: ID_PATTERN },
  additionalProperties: false,
  'x-key': 'name',
  'x-key-expected': `a sink name of ${ID_EXPECTED}`,
  'x-type': 'mapping of sink name to sink',
  'x-expected': 'a mapping of sink names to sink settings, with at least one sink',
});

export const HostmetaServiceSchema = section(
  {
    enabled: Type.Boolean({ description: 'Run the host metadata service inside this node.', default: true }),
    address: address('Address the host metadata HTTP API binds to.'),
    port: Type.Integer({ description: 'Port of the host metadata HTTP API; 0 picks a free port.', default: 8090, minimum: 0, maximum: 65535 }),
    postgres_url: Type.Union([Type.String({ minLength: 1, pattern: '^postgres(ql)?://' }), Type.Null()], {
      description: 'PostgreSQL URL (`postgres://user@host:5432/db`) to keep host metadata in, shared by every node; `null` keeps it in SQLite at `<data_dir>/hostmeta.sqlite`.',
      default: null,
      'x-type': 'URL or null',
      'x-expected': 'a postgres:// URL, or null',
    }),
    postgres_schema: Type.String({
      description: 'PostgreSQL schema for the tables; created when missing.',
      default: 'sluice_hostmeta',
      pattern: '^[a-z_][a-z0-9_]{0,62}$',
      'x-expected': 'a lowercase SQL identifier such as sluice_hostmeta',
    }),
    postgres_pool_size: Type.Integer({ description: 'Connections the PostgreSQL pool may open.', default: 10, minimum: 1, maximum: 1000 }),
    max_document: size('64KiB', 'Largest metadata document a PUT or PATCH may produce; larger: HTTP 413.'),
  },
  'The host metadata service (`GET/PUT/PATCH/DELETE /host_metadata/<tenant>/<host key>`, see hostmeta.md).',
);

export const HostmetaClientSchema = section(
  {
    enabled: Type.Boolean({ description: 'Enrich records with their host\'s metadata and register hosts as they are seen.', default: true }),
    url: Type.Union([Type.String({ minLength: 1, pattern: '^https?://' }), Type.Null()], {
      description: 'Base URL of the host metadata service; `null` uses the one this node runs.',
      default: null,
      'x-type': 'URL or null',
      'x-expected': 'an http:// URL, or null',
    }),
    token_file: Type.Union([Type.String({ minLength: 1 }), Type.Null()], {
      description: 'File holding the token the client sends to a service at `url` (a copy of that service\'s `<data_dir>/hostmeta-token`); `null`: `<data_dir>/hostmeta-token`, which this node\'s own service writes. Read at start; a remote service without a readable token file stops the start.',
      default: null,
      'x-type': 'path or null',
      'x-expected': 'a file path, or null',
    }),
    connections: Type.Integer({ description: 'Keep-alive connections to the service.', default: 16, minimum: 1, maximum: 1024 }),
    cache_ttl: duration('5m', 'How long a host\'s metadata is used before it is asked for again.'),
    negative_cache_ttl: duration('30s', 'How long "this host has no metadata" is believed.'),
    cache_max_entries: Type.Integer({ description: 'Hosts kept in the cache (least recently used evicted).', default: 50000, minimum: 1 }),
    lookup_timeout: duration('250ms', 'Longest a batch with a host never seen before waits for its metadata; then it goes on without.'),
    touch_interval: duration('60s', 'A host\'s `last_seen` is refreshed at most this often.'),
    restart_after: duration('30s', 'A remote client whose every request has failed for this long is restarted by the supervisor with backoff (new connections, the address resolved again); lookups meanwhile are answered from the cache or go on without metadata. 0: never.'),
  },
  "The node's client of the host metadata service, with its cache.",
);

export const HostmetaSchema = section(
  { service: HostmetaServiceSchema, client: HostmetaClientSchema },
  'Host metadata: the service that stores it and the client that enriches records with it.',
);

export const SupervisionSchema = section(
  {
    initial_backoff: duration('100ms', 'Wait before restarting a worker (or a component) after its first failure; each failure in a row doubles it, with jitter.'),
    max_backoff: duration('30s', 'Longest wait between restarts.'),
    stable_after: duration('30s', 'A worker or component that has run this long is healthy again: its next failure starts the backoff over.'),
    crash_loop_after: Type.Integer({
      description: 'Failures in a row after which a worker or component is reported as in a crash loop (event SLU0803E, gauge `sluice_crash_loop`, a /readyz note). It is still restarted at the longest backoff; the node never exits over it.',
      default: 5,
      minimum: 1,
    }),
  },
  'How the primary restarts its workers, and a worker its components: exponential backoff with jitter, never giving up.',
);

export const AdminSchema = section(
  {
    enabled: Type.Boolean({ description: 'Serve the dashboard, `/metrics`, `/healthz`, `/readyz` and the admin API (see admin.md).', default: true }),
    address: address('Address the admin server binds to. Keep it on loopback unless every admin token is strong and the network is trusted.'),
    port: Type.Integer({ description: 'Admin server port; 0 picks a free port.', default: 8080, minimum: 0, maximum: 65535 }),
    tokens: Type.Array(
      Type.Object({
        token: Type.String({
          minLength: 16,
          pattern: TOKEN_PATTERN,
          description: 'The token itself or `sha256:<hex>` of it; only the hash is kept in memory.',
          'x-expected': 'a token of at least 16 printable characters without spaces, quotes or backslashes, or sha256:<64 hex digits>',
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
    tenant_series: Type.Integer({
      description: 'Tenants (in configuration order) that get metric series of their own; the rest are counted under `tenant="other"`, so a node with many tenants keeps a bounded number of series.',
      default: 100, minimum: 0, maximum: 10000,
    }),
  },
  'The admin server: dashboard, metrics, health and the admin API (see admin.md).',
);

function fraction(def: number, description: string) {
  return Type.Number({ description, default: def, minimum: 0.05, maximum: 1, 'x-expected': 'a fraction of the budget from 0.05 to 1, such as 0.8' });
}

export const MemorySchema = section(
  {
    budget: size('512MiB', 'What the node may hold for its agents beyond its fixed overhead: the bytes every queue and buffer accounts (sessions, lanes, sink queues, HTTP bodies). The JS heap is measured apart, against V8\'s heap limit. From 1MiB to 64GiB. See memory.md.',
      { min: 1024 ** 2, minText: '1MiB', max: 64 * 1024 ** 3, maxText: '64GiB' }),
    soft_mark: fraction(0.8, 'Past this fraction of the budget the heaviest sessions pause reading (TCP backpressure) and acknowledgements are delayed.'),
    hard_mark: fraction(0.95, 'Past this fraction of the budget new connections are refused, HTTP requests are answered 503 and UDP datagrams dropped (all counted). Above soft_mark.'),
    hysteresis: Type.Number({ description: 'How far below a mark (a fraction of the budget) pressure must fall before its state is left, so states do not flap.', default: 0.05, minimum: 0, maximum: 0.5 }),
    sample_interval: duration('100ms', 'How often the governor measures (off the hot path, which reads only the resulting state).'),
  },
  'The memory governor (see memory.md).',
);

export const ClusterSchema = section(
  {
    nats: Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }))], {
      description: 'NATS servers (`nats://host:port`, one URL or a list) whose JetStream key-value buckets hold the cluster\'s membership, leader and host session locks. Empty: the node runs alone. See cluster.md.',
      default: [], 'x-type': 'URL or list of URLs', 'x-expected': 'a nats:// URL or a list of them',
    }),
    node_id: Type.String({
      description: 'This node\'s name in the cluster, unique among its members. Empty: the machine\'s hostname.',
      default: '', pattern: '^([A-Za-z0-9_-]{1,64})?$', 'x-expected': '1 to 64 letters, digits, "_" and "-", or empty',
    }),
    bucket_prefix: Type.String({
      description: 'Prefix of the key-value buckets (`<prefix>_members`, `<prefix>_leader`, `<prefix>_host_locks`); nodes with the same prefix form one cluster.',
      default: 'sluice', pattern: '^[A-Za-z0-9_-]{1,32}$', 'x-expected': '1 to 32 letters, digits, "_" and "-"',
    }),
    replicas: Type.Integer({ description: 'Replicas of each bucket when it is created (3 on a 3-server NATS cluster).', default: 1, minimum: 1, maximum: 5 }),
    heartbeat_interval: duration('1s', 'How often the node writes its heartbeat (identity and load) and renews its leadership or claims it.'),
    member_ttl: duration('10s', 'A member whose heartbeat is older than this disappears from the cluster (the bucket\'s time-to-live, fixed when the bucket is created).'),
    leader_ttl: duration('5s', 'The leader key expires this long after its last renewal, so a new leader is elected at most this long plus one heartbeat after the old one died (fixed when the bucket is created).'),
    host_locks: Type.Boolean({ description: 'One node owns a host\'s session at a time: a host that connects through another node takes its session over and the old node closes its own.', default: true }),
    prune_hosts_after: duration('30d', 'The leader deletes host metadata of hosts unseen for this long (when this node runs the host metadata service). 0: never.'),
    shed_connections_over: Type.Number({
      description: 'A node with more than this multiple of its fair share of the cluster\'s connections (or over its soft memory mark) asks some agents to reconnect (RELP serverclose, HTTP Connection: close) so the balancer spreads them. 0: never.',
      default: 1.25, minimum: 0, maximum: 100,
    }),
    shed_interval: duration('10s', 'How often a node considers shedding, and the pause after it has shed, so the balancer\'s view settles.'),
  },
  'Cluster mode: several nodes behind a TCP load balancer, coordinated through NATS JetStream key-value buckets (see cluster.md).',
);

export const SluiceConfigSchema = Type.Partial(
  Type.Object({
    data_dir: Type.String({
      description:
        'Folder for the data the node keeps; a relative path is relative to the working directory the node starts in.',
      default: './data',
      minLength: 1,
    }),
    log: LogSchema,
    workers: Type.Union([Type.Literal('auto'), Type.Integer({ minimum: 1, maximum: 256 })], {
      description: '`sluice start` runs a primary process and this many worker processes that share every listener; `auto` is the number of cores available (os.availableParallelism()). See operations.md.',
      default: 'auto',
      'x-type': '`auto` or integer, 1 to 256',
      'x-expected': '"auto" or a whole number of workers from 1 to 256',
    }),
    connection_balancing: Type.Union([Type.Literal('kernel'), Type.Literal('round_robin')], {
      description: 'How the workers share stream connections. `kernel`: every worker accepts from the shared listening socket, so a reconnect storm of thousands of agents is accepted by all workers at once. `round_robin`: the primary accepts each connection and hands it to the workers in turn (even, but every accept passes through the primary). Taken at start; changing it takes a restart. See operations.md.',
      default: 'kernel',
    }),
    supervision: SupervisionSchema,
    shutdown_timeout: duration(
      '10s',
      'On shutdown, how long the node waits for queued records to be written before it exits anyway.',
    ),
    sources: SourcesSchema,
    tenants: TenantsSchema,
    sinks: SinksSchema,
    hostmeta: HostmetaSchema,
    admin: AdminSchema,
    memory: MemorySchema,
    cluster: ClusterSchema,
  }),
  {
    $id: 'https://sluice.dev/schema/config.json',
    title: 'sluice configuration',
    description: 'The YAML configuration of a sluice node. Every key is optional.',
    additionalProperties: false,
  },
);

/** The configuration as written in YAML (every key optional). */
export type SluiceConfigInput = Static<typeof SluiceConfigSchema>;

/** Every optional key present: the input once the schema's defaults are applied. */
export type Filled<T> = T extends readonly (infer U)[]
  ? Filled<U>[]
  : T extends object
    ? { [K in keyof T]-?: Filled<T[K]> }
    : T;

export type SluiceConfigFilled = Filled<SluiceConfigInput>;
