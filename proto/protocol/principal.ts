// Principal ids: "svc_" + the first 16 bytes of SHA-256("openkey-principal-v1:<alg>:" ‖ public key),
// in hex, where a P-256 key is taken in its 33-byte compressed SEC1 form. Derived from the key, so a client knows its id before registering and the same key can
// never be registered twice.

import { sha256 } from '@noble/hashes/sha2';
import { bytesToHex, concatBytes, utf8ToBytes } from '@noble/hashes/utils';

export type PrincipalKeyAlgorithmName = 'ed25519' | 'p256';

export function principalIdFor(algorithm: PrincipalKeyAlgorithmName, publicKey: Uint8Array): string {
  const h = sha256(concatBytes(utf8ToBytes(`openkey-principal-v1:${algorithm}:`), publicKey));
  return `svc_${bytesToHex(h.subarray(0, 16))}`;
}
