// Verification of a principal's request-stamp signature: Ed25519 (RFC 8032, 32-byte key, 64-byte
// signature) or ECDSA P-256 with SHA-256 (FIPS 186-5; SEC1 key, 64-byte r‖s IEEE P1363 signature).
// node:crypto does the math; KeyObjects are cached per public key in a bounded LRU so a busy
// principal does not pay for a key import on every request.

import { createPublicKey, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519';
import { p256 } from '@noble/curves/p256';
import { OpenKeyError } from '../errors.ts';
import type { PrincipalAlgorithm } from '../ports.ts';
import { ed25519PublicKeyObject } from './ed25519.ts';

// DER: SEQUENCE { SEQUENCE { OID id-ecPublicKey, OID prime256v1 }, BIT STRING (65-byte point) }
const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');
const SIGNATURE_LENGTH = 64;

/**
 * Checks a principal public key and returns its normalized form (a new array):
 * - ed25519: the 32-byte encoding, which must be canonical (y < p), decode to a curve point, and be
 *   neither of small order nor carry a torsion component (an honest key is k·B, of prime order L);
 * - p256: any valid SEC1 point (33-byte compressed or 65-byte uncompressed), normalized to the
 *   33-byte compressed form so one key has one byte representation.
 * Throws INVALID_PUBLIC_KEY otherwise.
 */
export function validatePrincipalPublicKey(algorithm: PrincipalAlgorithm, publicKey: Uint8Array): Uint8Array {
  if (!(publicKey instanceof Uint8Array)) throw new OpenKeyError('INVALID_PUBLIC_KEY', 'public key must be bytes');
  try {
    if (algorithm === 'ed25519') {
      if (publicKey.length !== 32) throw new Error('length');
      const point = ed25519.Point.fromHex(publicKey, false); // strict RFC 8032 decoding, not ZIP-215
      if (point.isSmallOrder() || !point.isTorsionFree()) throw new Error('weak point');
      return Uint8Array.from(publicKey);
    }
    if (algorithm === 'p256') {
      if (publicKey.length !== 33 && publicKey.length !== 65) throw new Error('length');
      return p256.Point.fromHex(publicKey).toRawBytes(true); // on-curve, not infinity
    }
  } catch (e) {
    throw new OpenKeyError('INVALID_PUBLIC_KEY', `not a valid ${algorithm} public key`, { cause: e });
  }
  throw new OpenKeyError('UNSUPPORTED_ALGORITHM', 'principal algorithm must be ed25519 or p256');
}

/**
 * A KeyObject for a stored principal key. Keys were checked by validatePrincipalPublicKey when they
 * were registered, so this only decodes: the Ed25519 prime-order check costs ~1.5 ms in JS and
 * would make every cache miss expensive. OpenSSL still decodes the point when verifying.
 */
function keyObjectFor(algorithm: PrincipalAlgorithm, publicKey: Uint8Array): KeyObject {
  if (algorithm === 'ed25519') return ed25519PublicKeyObject(publicKey);
  if (publicKey.length !== 33 && publicKey.length !== 65) throw new OpenKeyError('INVALID_PUBLIC_KEY', 'P-256 key must be 33 or 65 bytes');
  const uncompressed = p256.Point.fromHex(publicKey).toRawBytes(false); // throws off the curve
  return createPublicKey({ key: Buffer.concat([P256_SPKI_PREFIX, uncompressed]), format: 'der', type: 'spki' });
}

export interface PrincipalVerifierOptions {
  /** KeyObjects kept; the least recently used is dropped beyond this. Default 1024. */
  readonly maxCachedKeys?: number;
}

export interface PrincipalVerifier {
  /**
   * True iff `signature` is a valid signature over `message` by `publicKey`. Never throws: a
   * malformed key or signature is simply not valid. For p256 the message is hashed with SHA-256
   * here; high-S signatures are accepted (see below). `publicKey` is a registered key, already
   * checked by validatePrincipalPublicKey; verification does not repeat the costly checks.
   */
  verify(algorithm: PrincipalAlgorithm, publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
  /** Number of cached KeyObjects (for metrics and tests). */
  readonly cachedKeys: number;
}

/**
 * P-256 and high-S: both (r, s) and (r, n − s) verify under ECDSA. We accept both because the
 * signers principals use (WebCrypto, OpenSSL, cloud KMS, passkey authenticators) do not normalize S,
 * and a stamp's replay protection rests on the signed nonce and timestamp, never on the signature
 * bytes being unique. r and s must still be in [1, n − 1] (OpenSSL checks this).
 */
export function createPrincipalVerifier(options: PrincipalVerifierOptions = {}): PrincipalVerifier {
  const max = options.maxCachedKeys ?? 1024;
  if (!Number.isSafeInteger(max) || max < 1) throw new OpenKeyError('INTERNAL', 'maxCachedKeys must be a positive integer');
  // Map iteration order is insertion order: re-inserting on a hit makes the first key the LRU one.
  const cache = new Map<string, KeyObject>();

  function lookup(algorithm: PrincipalAlgorithm, publicKey: Uint8Array): KeyObject {
    const id = `${algorithm}:${Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.byteLength).toString('hex')}`;
    const hit = cache.get(id);
    if (hit !== undefined) {
      cache.delete(id);
      cache.set(id, hit);
      return hit;
    }
    const key = keyObjectFor(algorithm, publicKey); // throws for an invalid key, which is not cached
    cache.set(id, key);
    if (cache.size > max) {
      const oldest = cache.keys().next();
      if (oldest.done !== true) cache.delete(oldest.value);
    }
    return key;
  }

  return {
    verify(algorithm, publicKey, message, signature) {
      if (!(publicKey instanceof Uint8Array) || !(message instanceof Uint8Array) || !(signature instanceof Uint8Array)) return false;
      if (signature.length !== SIGNATURE_LENGTH) return false;
      try {
        if (algorithm === 'ed25519') return nodeVerify(null, message, lookup('ed25519', publicKey), signature);
        if (algorithm === 'p256') return nodeVerify('sha256', message, { key: lookup('p256', publicKey), dsaEncoding: 'ieee-p1363' }, signature);
        return false;
      } catch {
        // Invalid public key, or a signature OpenSSL cannot parse: not a valid signature.
        return false;
      }
    },
    get cachedKeys() {
      return cache.size;
    },
  };
}
