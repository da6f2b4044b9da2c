/**
 * What the host metadata API accepts: the JSON schema of a document (PUT) and
 * of a merge (PATCH), and how deep a document may nest. Tenant ids, host keys
 * and the echo headers are in keys.ts, which the client shares with the
 * service without loading these validators.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';

/** Objects and arrays nest at most this deep in a document (deeper would exhaust the stack when it is stored). */
export const MAX_DOCUMENT_DEPTH = 32;

/**
 * Whether JSON text nests objects and arrays deeper than `max`, read before
 * it is parsed: JSON.parse takes any depth, but JSON.stringify (the store)
 * recurses as deep as the value nests.
 */
export function nestedDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
  return false;
}

/**
 * A host's document. The collector writes the named fields; operators may add
 * `labels` and any other fields of their own, which the collector never touches.
 */
export interface HostMetadata {
  hostname?: string;
  first_seen?: string;
  last_seen?: string;
  source_address?: string;
  protocol?: string;
  labels?: Record<string, string>;
  [field: string]: unknown;
}

/** The body of a merge: each named field replaces the document's, `null` removes it. */
export type HostMetadataPatch = { [K in keyof HostMetadata]?: HostMetadata[K] | null };

const TIMESTAMP = '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?(Z|[+-]\\d{2}:\\d{2})$';

const FIELDS = {
  hostname: {
    type: 'string', minLength: 1, maxLength: 255,
    description: 'The hostname the host reports in its messages (or its address when it reports none).',
  },
  first_seen: {
    type: 'string', pattern: TIMESTAMP,
    description: 'When a collector first saw the host (RFC 3339).',
  },
  last_seen: {
    type: 'string', pattern: TIMESTAMP,
    description: 'When a collector last saw the host (RFC 3339); refreshed at most once per touch interval.',
  },
  source_address: {
    type: 'string', minLength: 1, maxLength: 100,
    description: 'The network address the host\'s messages came from.',
  },
  protocol: {
    type: 'string', pattern: '^[a-z0-9_]{1,32}$',
    description: 'The source that received the host\'s messages, e.g. `syslog_tcp`.',
  },
  labels: {
    type: 'object', additionalProperties: { type: 'string' },
    description: 'Free-form string labels, set by operators.',
  },
} as const;

/** JSON schema of a document (the body of a PUT). Fields not listed are kept as they are. */
export const HOST_METADATA_SCHEMA = {
  $id: 'sluice-host-metadata',
  title: 'Host metadata',
  type: 'object',
  properties: FIELDS,
  additionalProperties: true,
} as const;

/** JSON schema of a merge (the body of a PATCH): the same fields, each also `null`, which removes it. */
export const HOST_METADATA_PATCH_SCHEMA = {
  $id: 'sluice-host-metadata-patch',
  title: 'Host metadata merge',
  type: 'object',
  properties: Object.fromEntries(Object.entries(FIELDS).map(([name, field]) => [name, { anyOf: [field, { type: 'null' }] }])),
  additionalProperties: true,
} as const;

// Our own Ajv rather than fastify's: fastify's coerces types (5 → "5") and
// would silently accept what the schema says is wrong.
const ajv = new Ajv({ allErrors: true, strict: true });
const validateDocument = ajv.compile(HOST_METADATA_SCHEMA);
const validatePatch = ajv.compile(HOST_METADATA_PATCH_SCHEMA);

function describe(errors: ErrorObject[] | null | undefined): string {
  // anyOf repeats each branch's error; the branch messages say more than "must match a schema in anyOf".
  const useful = (errors ?? []).filter((e) => e.keyword !== 'anyOf');
  return useful.map((e) => `body${e.instancePath.replaceAll('/', '.')} ${e.message ?? 'is invalid'}`).join('; ');
}

function check(validate: ValidateFunction, body: unknown): string | null {
  return validate(body) ? null : describe(validate.errors);
}

/** Null when `body` is a valid document, else what is wrong with it. */
export function documentProblem(body: unknown): string | null {
  return check(validateDocument, body);
}

/** Null when `body` is a valid merge, else what is wrong with it. */
export function patchProblem(body: unknown): string | null {
  return check(validatePatch, body);
}
