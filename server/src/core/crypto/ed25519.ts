// Ed25519 (RFC 8032 §5.1) through node:crypto (OpenSSL). A signer holds one KeyObject built once from
// the 32-byte seed (PKCS#8, RFC 8410 §7), so signing does not re-import the key per call; destroy()
// drops it. Public keys are the 32-byte RFC 8032 §5.1.5 encoding.

import { createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { OpenKeyError } from '../errors.ts';

// DER: SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.112 }, OCTET STRING { OCTET STRING (32) } }
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
// DER: SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING (0 unused bits, 32 bytes) }
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export const ED25519_SEED_LENGTH = 32;
export const ED25519_PUBLIC_KEY_LENGTH = 32;
export const ED25519_SIGNATURE_LENGTH = 64;

function seedKeyObject(seed: Uint8Array): KeyObject {
  if (!(seed instanceof Uint8Array) || seed.length !== ED25519_SEED_LENGTH) throw new OpenKeyError('INVALID_PRIVATE_KEY', 'Ed25519 seed must be 32 bytes');
  const der = Buffer.alloc(PKCS8_PREFIX.length + ED25519_SEED_LENGTH);
  PKCS8_PREFIX.copy(der, 0);
  der.set(seed, PKCS8_PREFIX.length);
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } finally {
    der.fill(0);
  }
}

function rawPublicKey(key: KeyObject): Uint8Array {
  const spki = createPublicKey(key).export({ format: 'der', type: 'spki' });
  if (spki.length !== SPKI_PREFIX.length + ED25519_PUBLIC_KEY_LENGTH || !spki.subarray(0, SPKI_PREFIX.length).equals(SPKI_PREFIX)) {
    throw new OpenKeyError('INTERNAL', 'unexpected Ed25519 SPKI encoding');
  }
  return new Uint8Array(spki.subarray(SPKI_PREFIX.length));
}

/** An Ed25519 signing key held as a KeyObject. Create once per key; destroy when evicted. */
export interface Ed25519Signer {
  /** 32-byte public key. */
  readonly publicKey: Uint8Array;
  /** 64-byte signature over `message` (pure Ed25519, no prehash, no context). */
  sign(message: Uint8Array): Uint8Array;
  /** Drops the KeyObject; later sign() calls throw INTERNAL. Idempotent. */
  destroy(): void;
  readonly destroyed: boolean;
}

/**
 * Builds a signer from a 32-byte seed. The seed is not retained (the caller zeroizes its copy); the
 * DER buffer used to import it is zeroized here. OpenSSL owns the key material after import and
 * cleanses it when the KeyObject is garbage-collected.
 */
export function createEd25519Signer(seed: Uint8Array): Ed25519Signer {
  let key: KeyObject | undefined = seedKeyObject(seed);
  const publicKey = rawPublicKey(key);
  return {
    publicKey,
    sign(message: Uint8Array): Uint8Array {
      if (key === undefined) throw new OpenKeyError('INTERNAL', 'Ed25519 signer used after destroy');
      // A copy, not a view: node may hand back a slice of its shared Buffer pool.
      return new Uint8Array(nodeSign(null, message, key));
    },
    destroy(): void {
      key = undefined;
    },
    get destroyed(): boolean {
      return key === undefined;
    },
  };
}

/** The 32-byte public key of a 32-byte seed. */
export function ed25519PublicKey(seed: Uint8Array): Uint8Array {
  return rawPublicKey(seedKeyObject(seed));
}

/** A KeyObject for a raw 32-byte Ed25519 public key. Throws INVALID_PUBLIC_KEY. */
export function ed25519PublicKeyObject(publicKey: Uint8Array): KeyObject {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== ED25519_PUBLIC_KEY_LENGTH) throw new OpenKeyError('INVALID_PUBLIC_KEY', 'Ed25519 public key must be 32 bytes');
  try {
    return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' });
  } catch (e) {
    throw new OpenKeyError('INVALID_PUBLIC_KEY', 'not an Ed25519 public key', { cause: e });
  }
}

/**
 * RFC 8032 §5.1.7 verification (OpenSSL rejects S ≥ L). False for any malformed input; never throws.
 * For per-request verification with a cached KeyObject see principal-signature.ts.
 */
export function ed25519Verify(publicKey: Uint8Array | KeyObject, message: Uint8Array, signature: Uint8Array): boolean {
  if (!(signature instanceof Uint8Array) || signature.length !== ED25519_SIGNATURE_LENGTH) return false;
  try {
    const key = publicKey instanceof Uint8Array ? ed25519PublicKeyObject(publicKey) : publicKey;
    return nodeVerify(null, message, key, signature);
  } catch {
    // A key that does not import, or a KeyObject of another type: not a valid signature.
    return false;
  }
}
