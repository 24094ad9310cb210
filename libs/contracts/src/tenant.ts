import { InvalidArgumentError } from './errors';
import { DEFAULT_TENANT } from './subjects';

/** Tenant names: what every event, item and request may name (ingest, every RPC, bus subjects' payloads). */
export const TENANT_MAX_LENGTH = 64;
export const TENANT_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
export const TENANT_RULE = `must be 1-${TENANT_MAX_LENGTH} letters, digits, _ . - (starting with a letter or digit)`;

export function isValidTenant(tenant: string): boolean {
  return tenant.length <= TENANT_MAX_LENGTH && TENANT_PATTERN.test(tenant);
}

/** The request's tenant, `default` when empty; INVALID_ARGUMENT naming `field` when malformed or too long. */
export function requestTenant(tenant: string, field = 'tenant'): string {
  if (tenant === '') return DEFAULT_TENANT;
  if (!isValidTenant(tenant)) throw new InvalidArgumentError(field, TENANT_RULE);
  return tenant;
}
