// Encrypted key import: the caller encrypts a 32-byte private key to the appliance's X25519 import
// key with HPKE base mode (RFC 9180: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM), with
// this info string and an AAD naming the algorithm and the importing principal, so a captured
// ciphertext cannot be imported under another principal or as another key type.

import { CanonicalWriter } from './encoding.ts';

export const IMPORT_INFO = 'openkey/v1/key-import';
export const IMPORT_SUITE = 'DHKEM(X25519,HKDF-SHA256)/HKDF-SHA256/AES-256-GCM';

export function importAad(algorithm: 'secp256k1' | 'ed25519', principalId: string): Uint8Array {
  return new TextEncoder().encode(`${IMPORT_INFO}:${algorithm}:${principalId}`);
}

/** What the identity key signs to vouch for the import key (see AttestResponse.import_key_signature). */
export function importKeyStatement(importPublicKey: Uint8Array): Uint8Array {
  return new CanonicalWriter('openkey-import-key-v1').bytes(importPublicKey).finish();
}
