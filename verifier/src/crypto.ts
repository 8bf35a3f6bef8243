// The verifier's cryptographic primitives, all from @noble (pure JS, browser-safe): ECDSA P-256
// verification with SHA-256 (quote, QE report, certificates, CRLs, collateral JSON; reference §5.1),
// SHA-2/Keccak digests, and secp256k1 public-key recovery for the dstack KMS chain (§2.2).

import { p256 } from '@noble/curves/nist.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256, sha384, sha512 } from '@noble/hashes/sha2.js';
import { keccak_256 } from '@noble/hashes/sha3.js';

import { VerifierError, type VerifierErrorCode } from './errors.ts';
import { DerReader, TAG, integerBytes } from './asn1/der.ts';

export { sha256, sha384, sha512, keccak_256 };

/**
 * ECDSA P-256 over SHA-256(message). `signature` is raw r‖s (64 bytes); `publicKey` an SEC1 point
 * (65-byte uncompressed or 33-byte compressed). High-S signatures are valid for P-256 (Intel's
 * signers do not normalise S). Returns false for every malformed input instead of throwing.
 */
export function verifyP256(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== 64) return false;
  if (!(publicKey.length === 65 && publicKey[0] === 4) && !(publicKey.length === 33 && (publicKey[0] === 2 || publicKey[0] === 3))) {
    return false;
  }
  try {
    return p256.verify(signature, sha256(message), publicKey, { prehash: false, lowS: false, format: 'compact' });
  } catch {
    // noble throws on r/s out of range or a point not on the curve: both are "does not verify".
    return false;
  }
}

/** Raw X‖Y (64 bytes, as in quotes) to an uncompressed SEC1 point. */
export function rawP256Key(xy: Uint8Array): Uint8Array {
  const out = new Uint8Array(65);
  out[0] = 4;
  out.set(xy, 1);
  return out;
}

/** DER `Ecdsa-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` to raw 64-byte r‖s (RFC 5480 §2.2). */
export function derSignatureToRaw(der: Uint8Array, code: VerifierErrorCode): Uint8Array {
  const outer = new DerReader(der, code);
  const seq = outer.sequence('ECDSA signature');
  outer.end('ECDSA signature');
  const out = new Uint8Array(64);
  for (const half of [0, 1]) {
    let v = integerBytes(seq.expect(TAG.INTEGER, 'ECDSA r/s'), code);
    if (v.length === 33 && v[0] === 0) v = v.subarray(1);
    if (v.length > 32) throw new VerifierError(code, 'ECDSA integer too long');
    out.set(v, half * 32 + (32 - v.length));
  }
  seq.end('ECDSA signature');
  return out;
}

/**
 * secp256k1 public-key recovery from a 65-byte r‖s‖v signature over a 32-byte digest; v is 0/1
 * (dstack) or 27/28 (Ethereum style). Returns the 33-byte compressed key, or undefined.
 */
export function recoverSecp256k1(signature: Uint8Array, digest: Uint8Array): Uint8Array | undefined {
  if (signature.length !== 65 || digest.length !== 32) return undefined;
  let v = signature[64]!;
  if (v === 27 || v === 28) v -= 27;
  if (v !== 0 && v !== 1) return undefined;
  try {
    const sig = secp256k1.Signature.fromBytes(signature.subarray(0, 64), 'compact').addRecoveryBit(v);
    return sig.recoverPublicKey(digest).toBytes(true);
  } catch {
    // Invalid r/s or no point for this recovery id: the signature recovers no key.
    return undefined;
  }
}
