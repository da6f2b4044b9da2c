/**
 * The pieces every component's configuration schema is built from. A
 * component's schema (beside its config type) describes the YAML a user
 * writes: snake_case keys, durations and sizes in human units, every key
 * optional. TypeBox builds plain JSON Schema (draft 2020-12 compatible), so
 * the same object drives validation, the reference documentation and editor
 * completion; ops/config assembles the components' schemas into one.
 *
 * A schema lives in a module of its own beside its config type, named after
 * it (`sinks/file/config.ts` → `config-schema.ts`, `ops/log-output.ts` →
 * `log-output-schema.ts`), and only other schemas and ops/config import it:
 * worker processes, which receive their configuration resolved, load the
 * types, defaults and checks but never TypeBox (a lint rule keeps it so).
 *
 * Rules every schema node follows:
 * - every property has a `description` (it becomes the documentation);
 * - every leaf has a `default`, written once: a component with a defaults
 *   constant hands its values in (durations in ms, sizes in bytes), and the
 *   schema shows them in units; objects default to `{}` so their own leaves
 *   fill in; maps (`tenants`, `sinks`) default to a complete entry;
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
 * - `x-auto`: a size that may also be `auto` (resolved from other settings);
 * - `x-key`: for a map, the placeholder for its keys in documentation (`id`);
 * - `x-key-expected`: for a map, what a valid key looks like;
 * - `x-keys-of`: for a branch of a discriminated union, what its keys are the
 *   keys of (`a nats sink`), said with an unknown key.
 * Two formats are used and registered with Ajv by the loader: `ip-or-localhost`
 * and `cidr`.
 */
import { Type, type Static, type TObject, type TSchema, type TUnsafe } from '@sinclair/typebox';
import { DURATION_EXPECTED, DURATION_PATTERN, durationText, SIZE_EXPECTED, SIZE_PATTERN, sizeText } from './units.js';

export const ANNOTATION_KEYWORDS = [
  'x-expected',
  'x-type',
  'x-min-bytes',
  'x-max-bytes',
  'x-auto',
  'x-key',
  'x-key-expected',
  'x-keys-of',
] as const;

/** Tenant ids and sink names: they become folder names. */
export const ID_PATTERN = '^[a-z0-9][a-z0-9_-]{0,62}$';
export const ID_EXPECTED =
  '1 to 63 characters of a-z, 0-9, "_" and "-", starting with a letter or a digit';

/** Tokens travel inside SD-PARAM values and HTTP headers: printable ASCII without space, quote or backslash. */
export const TOKEN_PATTERN = '^(sha256:[0-9a-f]{64}|[\\x21\\x23-\\x5b\\x5d-\\x7e]+)$';
export const TOKEN_EXPECTED = 'a token of at least 16 printable characters without spaces, quotes or backslashes, or sha256:<64 hex digits>';

/** The formats the loader registers with Ajv. */
export const FORMAT_IP_OR_LOCALHOST = 'ip-or-localhost';
export const FORMAT_CIDR = 'cidr';

/** A duration; `defaultMs` is shown in units (30000 → `30s`). */
export function duration(defaultMs: number, description: string) {
  return Type.Union([Type.Number({ minimum: 0 }), Type.String({ pattern: DURATION_PATTERN })], {
    description,
    default: durationText(defaultMs),
    'x-type': 'duration',
    'x-expected': DURATION_EXPECTED,
  });
}

/** A size; `defaultBytes` is shown in units (262144 → `256KiB`). */
export function size(defaultBytes: number, description: string, range?: { min: number; minText: string; max: number; maxText: string }) {
  const shown = sizeText(defaultBytes);
  return Type.Union([Type.Integer({ minimum: 0 }), Type.String({ pattern: SIZE_PATTERN })], {
    description,
    default: shown,
    'x-type': 'size',
    'x-expected': range ? `a size from ${range.minText} to ${range.maxText}, such as ${shown}` : SIZE_EXPECTED,
    ...(range ? { 'x-min-bytes': range.min, 'x-max-bytes': range.max } : {}),
  });
}

export function address(description: string, def = '127.0.0.1') {
  return Type.String({
    description,
    default: def,
    format: FORMAT_IP_OR_LOCALHOST,
    'x-type': 'IP address or `localhost`',
    'x-expected': 'an IPv4 or IPv6 address such as 127.0.0.1, 0.0.0.0 or ::1, or "localhost"',
  });
}

export function port(description: string, def: number) {
  return Type.Integer({ description, default: def, minimum: 0, maximum: 65535 });
}

export function optionalPath(description: string) {
  return Type.Union([Type.String({ minLength: 1 }), Type.Null()], {
    description,
    default: null,
    'x-type': 'file path or null',
    'x-expected': 'a file path, or null',
  });
}

/** A closed object whose properties are all optional (each has a default). */
export function section<P extends Record<string, TSchema>>(properties: P, description: string, annotations: { 'x-keys-of'?: string } = {}) {
  return Type.Partial(Type.Object(properties), {
    description,
    default: {},
    additionalProperties: false,
    ...annotations,
  });
}

/**
 * A map from ids (tenant ids, sink names: they become folder names) to
 * entries, at least one. Any key reaches `entry` (so an entry under a bad key
 * is still checked) and is checked itself by `propertyNames`.
 */
export function idMap<T extends TSchema>(entry: T, options: {
  description: string;
  default: Record<string, unknown>;
  /** The placeholder of a key in the documentation (`id`, `name`) and what a key is (`a tenant id`). */
  key: string;
  keyNoun: string;
  'x-type': string;
  'x-expected': string;
}) {
  return Type.Record(Type.String(), entry, {
    description: options.description,
    default: options.default,
    minProperties: 1,
    propertyNames: { pattern: ID_PATTERN },
    additionalProperties: false,
    'x-key': options.key,
    'x-key-expected': `${options.keyNoun} of ${ID_EXPECTED}`,
    'x-type': options['x-type'],
    'x-expected': options['x-expected'],
  });
}

/**
 * One of several closed objects told apart by the string property `tag`
 * (a sink's `type`). Each branch lists its own keys only, so a key of
 * another branch is an unknown key, reported with its path. Ajv (with its
 * `discriminator` option) validates only the branch the tag names and
 * applies that branch's defaults, which it would not do inside a plain
 * oneOf/anyOf; the tag itself defaults to the first branch's.
 */
export function discriminatedUnion<B extends TObject[]>(
  tag: string,
  branches: [...B],
  options: { description: string; tagDescription: string; 'x-expected': string },
): TUnsafe<Static<B[number]>> {
  const values = branches.map((branch) => (branch.properties[tag] as { const?: unknown } | undefined)?.const);
  if (!values.every((v): v is string => typeof v === 'string')) throw new Error(`every branch needs a literal ${tag}`);
  return Type.Unsafe<Static<B[number]>>({
    type: 'object',
    description: options.description,
    default: {},
    'x-expected': options['x-expected'],
    properties: {
      [tag]: { description: options.tagDescription, default: values[0], anyOf: values.map((v) => ({ const: v, type: 'string' })) },
    },
    required: [tag],
    discriminator: { propertyName: tag },
    oneOf: branches,
  });
}
