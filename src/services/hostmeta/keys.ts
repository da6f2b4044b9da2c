/**
 * The names the host metadata API is addressed by: tenant ids, host keys, and
 * the headers that echo them. The service and the client share these (so the
 * client never sends what the service would refuse); they are apart from the
 * document schema (schema.ts) so that a worker's client does not load its validators.
 */
export const TENANT_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;
/** SHA-1 of the tenant and the host's identity, as lowercase hex. */
export const HOST_KEY_PATTERN = /^[0-9a-f]{40}$/;

/**
 * Response headers naming the request a response answers (the request's
 * tenant and key, echoed). Every response of an item route carries them.
 */
export const TENANT_HEADER = 'x-hostmeta-tenant';
export const KEY_HEADER = 'x-hostmeta-key';

export function isTenantId(value: string): boolean {
  return TENANT_PATTERN.test(value);
}

export function isHostKey(value: string): boolean {
  return HOST_KEY_PATTERN.test(value);
}
