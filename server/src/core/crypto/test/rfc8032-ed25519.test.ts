// Ed25519 through node:crypto KeyObjects: RFC 8032 §7.1 vectors (from the RFC text, in
// vectors/rfc8032-ed25519.json), agreement with @noble/curves on random seeds and messages,
// the signer lifecycle (destroy) and hostile inputs.

import { describe, expect, it } from 'vitest';
import { ed25519 as noble } from '@noble/curves/ed25519';
import { createEd25519Signer, ed25519PublicKey, ed25519Verify } from '../ed25519.ts';
import { Prng, expectCode, hex, member, readVectors, rows, unhex } from './helpers.ts';

const vectors = rows(member(readVectors('rfc8032-ed25519.json'), 'vectors'), ['name', 'secretKey', 'publicKey', 'message', 'signature']);

describe('RFC 8032 §7.1 test vectors', () => {
  it.each(vectors)('$name', (v) => {
    const signer = createEd25519Signer(unhex(v.secretKey));
    expect(hex(signer.publicKey)).toBe(v.publicKey);
    expect(hex(ed25519PublicKey(unhex(v.secretKey)))).toBe(v.publicKey);
    expect(hex(signer.sign(unhex(v.message)))).toBe(v.signature);
    expect(ed25519Verify(unhex(v.publicKey), unhex(v.message), unhex(v.signature))).toBe(true);
  });
});

describe('cross-check with @noble/curves', () => {
  it('same public keys and signatures; each verifies the other', () => {
    const rng = new Prng('ed25519-noble');
    for (let i = 0; i < 50; i++) {
      const seed = rng.bytes(32);
      const msg = rng.bytes(rng.int(300));
      const signer = createEd25519Signer(seed);
      const sig = signer.sign(msg);
      expect(hex(signer.publicKey)).toBe(hex(noble.getPublicKey(seed)));
      expect(hex(sig)).toBe(hex(noble.sign(msg, seed)));
      expect(noble.verify(sig, msg, signer.publicKey)).toBe(true);
      expect(ed25519Verify(signer.publicKey, msg, noble.sign(msg, seed))).toBe(true);
    }
  });
});

describe('signer lifecycle and hostile inputs', () => {
  it('destroy drops the key: later sign throws INTERNAL; destroy is idempotent', () => {
    const signer = createEd25519Signer(new Uint8Array(32).fill(9));
    signer.sign(new Uint8Array(1));
    expect(signer.destroyed).toBe(false);
    signer.destroy();
    signer.destroy();
    expect(signer.destroyed).toBe(true);
    expectCode(() => signer.sign(new Uint8Array(1)), 'INTERNAL');
  });

  it('seed of the wrong length ⇒ INVALID_PRIVATE_KEY', () => {
    for (const n of [0, 31, 33, 64]) expectCode(() => createEd25519Signer(new Uint8Array(n)), 'INVALID_PRIVATE_KEY');
  });

  it('verify is false, never a throw, for tampered or malformed input', () => {
    const v = vectors[2];
    if (v === undefined) throw new Error('missing vector');
    const pub = unhex(v.publicKey);
    const msg = unhex(v.message);
    const sig = unhex(v.signature);
    for (let i = 0; i < sig.length; i++) {
      const bad = Uint8Array.from(sig);
      bad[i] = (bad[i] as number) ^ 0x01;
      expect(ed25519Verify(pub, msg, bad)).toBe(false);
    }
    const badMsg = Uint8Array.from(msg);
    badMsg[0] = (badMsg[0] as number) ^ 0x80;
    expect(ed25519Verify(pub, badMsg, sig)).toBe(false);
    expect(ed25519Verify(pub, msg, sig.subarray(0, 63))).toBe(false);
    expect(ed25519Verify(pub.subarray(0, 31), msg, sig)).toBe(false);
    // S + L (non-canonical S, RFC 8032 §5.1.7 requires S < L) must be rejected.
    const L = 2n ** 252n + 27742317777372353535851937790883648493n;
    const s = BigInt('0x' + hex(Uint8Array.from(sig.subarray(32)).reverse()));
    const sPlusL = unhex((s + L).toString(16).padStart(64, '0')).reverse();
    const malleable = Uint8Array.from(sig);
    malleable.set(sPlusL, 32);
    expect(hex(malleable.subarray(0, 32))).toBe(hex(sig.subarray(0, 32)));
    expect(noble.verify(malleable, msg, pub, { zip215: true })).toBe(false); // noble also refuses S ≥ L
    expect(ed25519Verify(pub, msg, malleable)).toBe(false);
    expect(ed25519Verify(pub, msg, sig)).toBe(true);
  });
});
