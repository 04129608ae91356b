import { randomUUID } from 'node:crypto';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export const WILDCARD = '00000000-0000-0000-0000-000000000000';

/** Factory+ UUIDs are compared in lower case; anything else is not a UUID. */
export function isUuid(v: unknown): v is string {
  return typeof v === 'string' && UUID_RE.test(v);
}

export function newUuid(): string {
  return randomUUID();
}
