// Sealed-key envelope v1: round trips, rotation and rewrapping, and the hostile-input properties
// (flip any byte, truncate anywhere, change any bound field, wrong secret) that must all end in the
// single SEALED_KEY_CORRUPT code.

import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { OpenKeyError, type ErrorCode } from './errors.ts';
import type { Random } from './ports.ts';
import {
  ENVELOPE_V1_LENGTH,
  SealingKeyring,
  rewrap,
  seal,
  sealedKeyVersion,
  unseal,
  type SealBinding,
} from './sealing.ts';

const random: Random = { bytes: (n) => new Uint8Array(randomBytes(n)) };
const secretOf = (fill: number): Uint8Array => new Uint8Array(32).fill(fill);
const S1 = secretOf(0x11);
const S2 = secretOf(0x22);
const ring1 = SealingKeyring.fromSecrets([{ version: 1, secret: S1 }], 1);

const binding: SealBinding = {
  keyId: 'key_01HZX3',
  algorithm: 'secp256k1',
  publicKey: Uint8Array.from({ length: 33 }, (_, i) => (i === 0 ? 0x02 : i)),
  owner: 'svc_alice',
};
const SECRET = Uint8Array.from({ length: 32 }, (_, i) => 0xa0 ^ i);

function codeOf(fn: () => unknown): ErrorCode | 'no error' {
  try {
    fn();
    return 'no error';
  } catch (e) {
    if (e instanceof OpenKeyError) return e.code;
    throw e;
  }
}

describe('sealing envelope v1', () => {
  it('round trips the secret and leaves the input untouched', () => {
    const input = Uint8Array.from(SECRET);
    const blob = seal({ keyring: ring1, random, ...binding, secret: input });
    expect(blob.length).toBe(ENVELOPE_V1_LENGTH);
    expect([...blob.subarray(0, 3)]).toEqual([0x4f, 0x4b, 0x01]);
    expect(sealedKeyVersion(blob)).toBe(1);
    expect(input).toEqual(SECRET);
    expect(unseal({ keyring: ring1, blob, ...binding })).toEqual(SECRET);
    // The plaintext does not appear in the blob.
    expect(Buffer.from(blob).indexOf(Buffer.from(SECRET))).toBe(-1);
  });

  it('round trips Ed25519 bindings too', () => {
    const ed: SealBinding = { keyId: 'k2', algorithm: 'ed25519', publicKey: new Uint8Array(32).fill(7), owner: 'o' };
    const blob = seal({ keyring: ring1, random, ...ed, secret: SECRET });
    expect(unseal({ keyring: ring1, blob, ...ed })).toEqual(SECRET);
  });

  it('uses a fresh nonce per seal (two seals of the same key differ)', () => {
    const a = seal({ keyring: ring1, random, ...binding, secret: SECRET });
    const b = seal({ keyring: ring1, random, ...binding, secret: SECRET });
    expect(Buffer.from(a.subarray(7, 19)).equals(Buffer.from(b.subarray(7, 19)))).toBe(false);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false);
  });

  it('takes the nonce from the injected Random port', () => {
    const fixed: Random = { bytes: (n) => new Uint8Array(n).fill(0x5a) };
    const blob = seal({ keyring: ring1, random: fixed, ...binding, secret: SECRET });
    expect([...blob.subarray(7, 19)]).toEqual(new Array(12).fill(0x5a));
    const bad: Random = { bytes: () => new Uint8Array(4) };
    expect(codeOf(() => seal({ keyring: ring1, random: bad, ...binding, secret: SECRET }))).toBe('INTERNAL');
  });

  it('flipping any single bit of any byte ⇒ SEALED_KEY_CORRUPT', () => {
    const blob = seal({ keyring: ring1, random, ...binding, secret: SECRET });
    for (let i = 0; i < blob.length; i++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const t = Uint8Array.from(blob);
        t[i] = (t[i] as number) ^ mask;
        expect(codeOf(() => unseal({ keyring: ring1, blob: t, ...binding })), `byte ${i} ^ ${mask}`).toBe('SEALED_KEY_CORRUPT');
      }
    }
  });

  it('truncating at every length, or appending, ⇒ SEALED_KEY_CORRUPT', () => {
    const blob = seal({ keyring: ring1, random, ...binding, secret: SECRET });
    for (let n = 0; n < blob.length; n++) {
      expect(codeOf(() => unseal({ keyring: ring1, blob: blob.slice(0, n), ...binding })), `length ${n}`).toBe('SEALED_KEY_CORRUPT');
      expect(codeOf(() => sealedKeyVersion(blob.slice(0, n)))).toBe('SEALED_KEY_CORRUPT');
    }
    const longer = new Uint8Array(blob.length + 1);
    longer.set(blob);
    expect(codeOf(() => unseal({ keyring: ring1, blob: longer, ...binding }))).toBe('SEALED_KEY_CORRUPT');
  });

  it('changing any bound field ⇒ SEALED_KEY_CORRUPT', () => {
    const blob = seal({ keyring: ring1, random, ...binding, secret: SECRET });
    const otherPk = Uint8Array.from(binding.publicKey);
    otherPk[32] = (otherPk[32] as number) ^ 1;
    const variants: [string, SealBinding][] = [
      ['keyId', { ...binding, keyId: 'key_01HZX4' }],
      ['owner', { ...binding, owner: 'svc_mallory' }],
      ['algorithm', { ...binding, algorithm: 'ed25519' }],
      ['publicKey', { ...binding, publicKey: otherPk }],
      ['publicKey shorter', { ...binding, publicKey: binding.publicKey.subarray(0, 32) }],
      // Length prefixes keep field boundaries: moving a byte between adjacent fields (publicKey ‖ owner) fails.
      ['boundary', { ...binding, publicKey: Uint8Array.from([...binding.publicKey, 0x73]), owner: binding.owner.slice(1) }],
      ['empty owner', { ...binding, owner: '' }],
      ['lone surrogate', { ...binding, owner: 'svc_alice\ud800' }],
    ];
    for (const [name, b] of variants) {
      expect(codeOf(() => unseal({ keyring: ring1, blob, ...b })), name).toBe('SEALED_KEY_CORRUPT');
    }
    // Unknown algorithm strings from an untyped caller are still the one code.
    const untyped = { ...binding, algorithm: 'rsa' } as unknown as SealBinding;
    expect(codeOf(() => unseal({ keyring: ring1, blob, ...untyped }))).toBe('SEALED_KEY_CORRUPT');
  });

  it('a keyring derived from a different sealing secret ⇒ SEALED_KEY_CORRUPT', () => {
    const blob = seal({ keyring: ring1, random, ...binding, secret: SECRET });
    const other = SealingKeyring.fromSecrets([{ version: 1, secret: S2 }], 1);
    expect(codeOf(() => unseal({ keyring: other, blob, ...binding }))).toBe('SEALED_KEY_CORRUPT');
  });

  it('the key version is part of the derivation: same secret, different version ⇒ different key', () => {
    const blob = seal({ keyring: ring1, random, ...binding, secret: SECRET });
    const relabelled = Uint8Array.from(blob);
    relabelled[6] = 2; // header says version 2
    const ring = SealingKeyring.fromSecrets([{ version: 2, secret: S1 }], 2);
    expect(codeOf(() => unseal({ keyring: ring, blob: relabelled, ...binding }))).toBe('SEALED_KEY_CORRUPT');
  });

  it('a blob naming a version the keyring lacks ⇒ SEALED_KEY_CORRUPT', () => {
    const ring2 = SealingKeyring.fromSecrets([{ version: 2, secret: S2 }], 2);
    const blob = seal({ keyring: ring1, random, ...binding, secret: SECRET });
    expect(codeOf(() => unseal({ keyring: ring2, blob, ...binding }))).toBe('SEALED_KEY_CORRUPT');
  });

  it('rewraps from key version 1 to 2; a keyring holding only v2 then unseals it', () => {
    const old = seal({ keyring: ring1, random, ...binding, secret: SECRET });
    const rotating = SealingKeyring.fromSecrets(
      [
        { version: 1, secret: S1 },
        { version: 2, secret: S2 },
      ],
      2,
    );
    expect(rotating.versions).toEqual([1, 2]);
    // The rotating keyring still reads v1 blobs.
    expect(unseal({ keyring: rotating, blob: old, ...binding })).toEqual(SECRET);
    const fresh = rewrap({ keyring: rotating, random, blob: old, ...binding });
    expect(sealedKeyVersion(fresh)).toBe(2);
    const only2 = SealingKeyring.fromSecrets([{ version: 2, secret: S2 }], 2);
    expect(unseal({ keyring: only2, blob: fresh, ...binding })).toEqual(SECRET);
    expect(codeOf(() => unseal({ keyring: only2, blob: old, ...binding }))).toBe('SEALED_KEY_CORRUPT');
    // Rewrap authenticates first: a tampered or rebound blob is not laundered into a valid one.
    const tampered = Uint8Array.from(old);
    tampered[30] = (tampered[30] as number) ^ 1;
    expect(codeOf(() => rewrap({ keyring: rotating, random, blob: tampered, ...binding }))).toBe('SEALED_KEY_CORRUPT');
    expect(codeOf(() => rewrap({ keyring: rotating, random, blob: old, ...binding, owner: 'x' }))).toBe('SEALED_KEY_CORRUPT');
  });

  it('rejects bad keyring configuration and bad seal inputs with INTERNAL', () => {
    expect(codeOf(() => SealingKeyring.fromSecrets([{ version: 1, secret: new Uint8Array(31) }], 1))).toBe('INTERNAL');
    expect(codeOf(() => SealingKeyring.fromSecrets([{ version: 1, secret: new Uint8Array(32) }], 1))).toBe('INTERNAL');
    expect(codeOf(() => SealingKeyring.fromSecrets([{ version: 0, secret: S1 }], 0))).toBe('INTERNAL');
    expect(codeOf(() => SealingKeyring.fromSecrets([{ version: 1.5, secret: S1 }], 1.5))).toBe('INTERNAL');
    expect(codeOf(() => SealingKeyring.fromSecrets([{ version: 1, secret: S1 }, { version: 1, secret: S2 }], 1))).toBe('INTERNAL');
    expect(codeOf(() => SealingKeyring.fromSecrets([{ version: 1, secret: S1 }], 2))).toBe('INTERNAL');
    expect(codeOf(() => seal({ keyring: ring1, random, ...binding, secret: new Uint8Array(31) }))).toBe('INTERNAL');
    expect(codeOf(() => seal({ keyring: ring1, random, ...binding, keyId: '', secret: SECRET }))).toBe('INTERNAL');
    expect(codeOf(() => seal({ keyring: ring1, random, ...binding, publicKey: new Uint8Array(0), secret: SECRET }))).toBe('INTERNAL');
  });

  it('does not keep a reference to the caller\'s sealing secret', () => {
    const s = secretOf(0x33);
    const ring = SealingKeyring.fromSecrets([{ version: 1, secret: s }], 1);
    const blob = seal({ keyring: ring, random, ...binding, secret: SECRET });
    s.fill(0); // the caller zeroizes its copy after building the keyring
    expect(unseal({ keyring: ring, blob, ...binding })).toEqual(SECRET);
  });
});
