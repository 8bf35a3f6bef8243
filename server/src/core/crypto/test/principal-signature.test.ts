// Principal request-stamp signatures: Ed25519 and P-256 ECDSA (SHA-256, r‖s IEEE P1363) verified
// through cached KeyObjects, with keys and signatures from node:crypto and from @noble/curves;
// tampered message, signature or key rejected; public-key validation and the LRU bound.

import { describe, expect, it } from 'vitest';
import { generateKeyPairSync, sign as nodeSign, type KeyObject } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519';
import { p256 } from '@noble/curves/p256';
import { sha256 } from '@noble/hashes/sha2';
import { createPrincipalVerifier, validatePrincipalPublicKey } from '../principal-signature.ts';
import { Prng, expectCode, hex, unhex } from './helpers.ts';

const rng = new Prng('principal');
const P256_N = p256.CURVE.n;

function rawEd25519(pub: KeyObject): Uint8Array {
  return new Uint8Array(pub.export({ format: 'der', type: 'spki' }).subarray(12));
}
function rawP256(pub: KeyObject): Uint8Array {
  const jwk = pub.export({ format: 'jwk' });
  return new Uint8Array([4, ...Buffer.from(jwk.x ?? '', 'base64url'), ...Buffer.from(jwk.y ?? '', 'base64url')]);
}
function flip(b: Uint8Array, i: number): Uint8Array {
  const c = Uint8Array.from(b);
  c[i] = (c[i] as number) ^ 0x01;
  return c;
}

describe('Ed25519 stamps', () => {
  const v = createPrincipalVerifier();
  it('node:crypto and noble keys/signatures verify; tampering fails', () => {
    for (let i = 0; i < 20; i++) {
      const msg = rng.bytes(1 + rng.int(200));
      const { publicKey, privateKey } = generateKeyPairSync('ed25519');
      const pub = rawEd25519(publicKey);
      const sig = new Uint8Array(nodeSign(null, msg, privateKey));
      expect(v.verify('ed25519', pub, msg, sig)).toBe(true);
      const seed = rng.bytes(32);
      const npub = ed25519.getPublicKey(seed);
      const nsig = ed25519.sign(msg, seed);
      expect(v.verify('ed25519', npub, msg, nsig)).toBe(true);
      expect(v.verify('ed25519', pub, flip(msg, i % msg.length), sig)).toBe(false);
      expect(v.verify('ed25519', pub, msg, flip(sig, (i * 7) % 64))).toBe(false);
      expect(v.verify('ed25519', npub, msg, sig)).toBe(false); // another key
      expect(v.verify('ed25519', pub, msg, sig.subarray(0, 63))).toBe(false);
      expect(v.verify('p256', pub, msg, sig)).toBe(false); // wrong algorithm for the key
    }
  });
});

describe('P-256 stamps', () => {
  const v = createPrincipalVerifier();
  it('node:crypto keys (uncompressed or compressed) and noble keys verify; tampering fails', () => {
    for (let i = 0; i < 20; i++) {
      const msg = rng.bytes(1 + rng.int(200));
      const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const pub = rawP256(publicKey);
      const compressed = validatePrincipalPublicKey('p256', pub);
      expect(compressed.length).toBe(33);
      const sig = new Uint8Array(nodeSign('sha256', msg, { key: privateKey, dsaEncoding: 'ieee-p1363' }));
      expect(v.verify('p256', pub, msg, sig)).toBe(true);
      expect(v.verify('p256', compressed, msg, sig)).toBe(true);
      const priv = p256.utils.randomPrivateKey();
      const npub = p256.getPublicKey(priv, true);
      const nsig = p256.sign(sha256(msg), priv).toCompactRawBytes();
      expect(v.verify('p256', npub, msg, nsig)).toBe(true);
      expect(v.verify('p256', pub, flip(msg, i % msg.length), sig)).toBe(false);
      expect(v.verify('p256', pub, msg, flip(sig, (i * 5) % 64))).toBe(false);
      expect(v.verify('p256', npub, msg, sig)).toBe(false);
      expect(v.verify('ed25519', compressed, msg, sig)).toBe(false);
    }
  });

  it('accepts high-S (decision: signers do not normalize S; replay protection is the nonce)', () => {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const msg = new TextEncoder().encode('stamp');
    const sig = new Uint8Array(nodeSign('sha256', msg, { key: privateKey, dsaEncoding: 'ieee-p1363' }));
    const s = BigInt('0x' + hex(sig.subarray(32)));
    const other = Uint8Array.from(sig);
    other.set(unhex((P256_N - s).toString(16).padStart(64, '0')), 32);
    expect(v.verify('p256', rawP256(publicKey), msg, sig)).toBe(true);
    expect(v.verify('p256', rawP256(publicKey), msg, other)).toBe(true);
  });

  it('r or s of zero or ≥ n is rejected', () => {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pub = rawP256(publicKey);
    const msg = new Uint8Array([1, 2, 3]);
    const sig = new Uint8Array(nodeSign('sha256', msg, { key: privateKey, dsaEncoding: 'ieee-p1363' }));
    const nBytes = unhex(P256_N.toString(16));
    for (const [off, val] of [[0, new Uint8Array(32)], [32, new Uint8Array(32)], [0, nBytes], [32, nBytes]] as const) {
      const bad = Uint8Array.from(sig);
      bad.set(val, off);
      expect(v.verify('p256', pub, msg, bad)).toBe(false);
    }
  });
});

describe('validatePrincipalPublicKey', () => {
  it('ed25519: canonical points of prime order only', () => {
    const good = ed25519.getPublicKey(rng.bytes(32));
    expect(hex(validatePrincipalPublicKey('ed25519', good))).toBe(hex(good));
    const identity = new Uint8Array(32);
    identity[0] = 1;
    const order8 = unhex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a');
    expect(ed25519.Point.fromHex(order8).isSmallOrder()).toBe(true);
    const mixed = ed25519.Point.fromHex(good).add(ed25519.Point.fromHex(order8)).toRawBytes();
    const nonCanonical = new Uint8Array(32).fill(0xff);
    nonCanonical[31] = 0x7f; // y = 2^255 − 1 ≥ p
    for (const bad of [identity, order8, mixed, nonCanonical, good.subarray(0, 31), new Uint8Array(33)]) {
      expectCode(() => validatePrincipalPublicKey('ed25519', bad), 'INVALID_PUBLIC_KEY');
    }
  });

  it('p256: on-curve SEC1 points, normalized to compressed', () => {
    const priv = p256.utils.randomPrivateKey();
    const un = p256.getPublicKey(priv, false);
    const co = p256.getPublicKey(priv, true);
    expect(hex(validatePrincipalPublicKey('p256', un))).toBe(hex(co));
    expect(hex(validatePrincipalPublicKey('p256', co))).toBe(hex(co));
    const offCurve = Uint8Array.from(un);
    offCurve[64] = (offCurve[64] as number) ^ 1;
    const badPrefix = Uint8Array.from(co);
    badPrefix[0] = 5;
    for (const bad of [offCurve, badPrefix, new Uint8Array([0]), new Uint8Array(33), new Uint8Array(65), un.subarray(0, 64)]) {
      expectCode(() => validatePrincipalPublicKey('p256', bad), 'INVALID_PUBLIC_KEY');
    }
  });

  it('an unknown algorithm ⇒ UNSUPPORTED_ALGORITHM', () => {
    expectCode(() => validatePrincipalPublicKey('rsa' as 'p256', new Uint8Array(33)), 'UNSUPPORTED_ALGORITHM');
  });
});

describe('KeyObject cache', () => {
  it('is bounded and keeps verifying after eviction', () => {
    const v = createPrincipalVerifier({ maxCachedKeys: 2 });
    const msg = new Uint8Array([7]);
    const keys = Array.from({ length: 4 }, () => rng.bytes(32));
    for (let round = 0; round < 3; round++) {
      for (const seed of keys) expect(v.verify('ed25519', ed25519.getPublicKey(seed), msg, ed25519.sign(msg, seed))).toBe(true);
      expect(v.cachedKeys).toBeLessThanOrEqual(2);
    }
  });

  it('keys that do not decode are never cached', () => {
    const v = createPrincipalVerifier();
    const offCurve = new Uint8Array(65).fill(1);
    offCurve[0] = 4;
    expect(v.verify('p256', offCurve, new Uint8Array(1), new Uint8Array(64).fill(1))).toBe(false);
    expect(v.verify('ed25519', new Uint8Array(31), new Uint8Array(1), new Uint8Array(64).fill(1))).toBe(false);
    expect(v.cachedKeys).toBe(0);
  });
});
