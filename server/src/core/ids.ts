// Identifiers: principal ids derived from the principal's public key (so registering the same key
// twice collides instead of creating a twin), and random key ids. Both have a fixed syntax that
// is checked at the edge before any lookup.

import { toHex } from './bytes.ts';
import { OpenKeyError } from './errors.ts';
import type { Random } from './ports.ts';

export { principalIdFor } from '../../../proto/protocol/principal.ts';

const KEY_ID_RE = /^key_[0-9a-f]{32}$/;
const PRINCIPAL_ID_RE = /^svc_[0-9a-f]{32}$/;

export function newKeyId(random: Random): string {
  return `key_${toHex(random.bytes(16))}`;
}

/** A syntactically valid key id, or KEY_NOT_FOUND: a malformed id names no key anyone may use. */
export function isKeyId(id: string): boolean {
  return KEY_ID_RE.test(id);
}

export function checkKeyId(id: string): string {
  if (!KEY_ID_RE.test(id)) throw new OpenKeyError(id === '' ? 'MISSING_FIELD' : 'KEY_NOT_FOUND', 'key_id');
  return id;
}

export function isPrincipalId(id: string): boolean {
  return PRINCIPAL_ID_RE.test(id);
}
