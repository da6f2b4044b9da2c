/**
 * What every sink type's schema has: its `type`, the tenants it takes and
 * the optional disk buffer in front of it. Each type (file/, syslog/ and
 * nats/config-schema.ts) adds its own keys; ops/config puts the types
 * together as one union discriminated by `type`, so a key of another type
 * is refused.
 */
import { Type, type TSchema } from '@sinclair/typebox';
import { section } from '../core/config-schema.js';
import { DiskBufferSchema } from './buffer/config-schema.js';

/** The schema of a `type: <type>` sink entry: type, tenants, the type's own keys, buffer. */
export function sinkSchema<T extends string, P extends Record<string, TSchema>>(type: T, description: string, own: P) {
  return section(
    {
      type: Type.Literal(type, { description: `\`${type}\`.` }),
      tenants: Type.Array(Type.String({ 'x-expected': 'a tenant id or "*"' }), {
        description: 'Tenants whose records this sink receives, by id; `"*"` means every tenant.',
        default: ['*'],
        minItems: 1,
        'x-type': 'list of tenant ids or `"*"`',
        'x-expected': 'a non-empty list of tenant ids or "*"',
      }),
      ...own,
      buffer: DiskBufferSchema,
    },
    description,
    { 'x-keys-of': `a ${type} sink` },
  );
}
