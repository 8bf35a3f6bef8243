// HPKE base mode (RFC 9180) with DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM: DeriveKeyPair
// against the RFC's A.1.1 vectors; interop with @hpke/core in both directions (and byte-identical
// output for the same ephemeral ikm); any flipped byte of enc, ciphertext or aad, or a wrong info or
// key, is one IMPORT_DECRYPT_FAILED.

import { describe, expect, it } from 'vitest';
import { Aes256Gcm, CipherSuite, HkdfSha256 } from '@hpke/core';
import { DhkemX25519HkdfSha256 } from '@hpke/dhkem-x25519';
import { createHpkeRecipient, hpkeOpen, hpkeSeal, x25519DeriveKeyPair, x25519PublicKey, HPKE_MAX_PLAINTEXT } from '../hpke.ts';
import type { Random } from '../../ports.ts';
import { Prng, expectCode, hex, member, readVectors, rows, unhex } from './helpers.ts';

const suite = new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes256Gcm() });
const keyPairs = rows(member(readVectors('rfc9180-x25519-derive.json'), 'keyPairs'), ['name', 'ikm', 'sk', 'pk']);
const fixed = (bytes: Uint8Array): Random => ({ bytes: (n) => bytes.slice(0, n) });
const rng = new Prng('hpke');
const text = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('DeriveKeyPair (RFC 9180 §7.1.3) — Appendix A.1.1 vectors', () => {
  it.each(keyPairs)('$name', (v) => {
    const kp = x25519DeriveKeyPair(unhex(v.ikm));
    expect(hex(kp.privateKey)).toBe(v.sk);
    expect(hex(kp.publicKey)).toBe(v.pk);
    expect(hex(x25519PublicKey(unhex(v.sk)))).toBe(v.pk);
  });
  it('refuses ikm shorter than Nsk', () => {
    expectCode(() => x25519DeriveKeyPair(new Uint8Array(31)), 'INVALID_PRIVATE_KEY');
  });
});

describe('interop with @hpke/core', () => {
  it('we seal, @hpke/core opens', async () => {
    const recipient = x25519DeriveKeyPair(rng.bytes(32));
    const sk = await suite.kem.importKey('raw', recipient.privateKey.slice().buffer, false);
    for (const n of [0, 1, 32, 100, 5000]) {
      const plaintext = rng.bytes(n);
      const info = text('openkey import v1');
      const aad = rng.bytes(20);
      const { enc, ciphertext } = hpkeSeal({ recipientPublicKey: recipient.publicKey, plaintext, info, aad });
      expect(ciphertext.length).toBe(n + 16);
      const pt = await suite.open({ recipientKey: sk, enc: enc.slice().buffer, info: info.slice().buffer }, ciphertext.slice().buffer, aad.slice().buffer);
      expect(hex(new Uint8Array(pt))).toBe(hex(plaintext));
    }
  });

  it('@hpke/core seals, we open', async () => {
    const recipient = x25519DeriveKeyPair(rng.bytes(32));
    const pk = await suite.kem.importKey('raw', recipient.publicKey.slice().buffer, true);
    for (const n of [0, 32, 64, 1000]) {
      const plaintext = rng.bytes(n);
      const info = rng.bytes(n % 50);
      const aad = rng.bytes(n % 30);
      const sealed = await suite.seal({ recipientPublicKey: pk, info: info.slice().buffer }, plaintext.slice().buffer, aad.slice().buffer);
      const pt = hpkeOpen({ recipientPrivateKey: recipient.privateKey, enc: new Uint8Array(sealed.enc), ciphertext: new Uint8Array(sealed.ct), info, aad });
      expect(hex(pt)).toBe(hex(plaintext));
    }
  });

  it('the same ephemeral ikm gives byte-identical enc and ciphertext', async () => {
    const recipient = x25519DeriveKeyPair(rng.bytes(32));
    const pk = await suite.kem.importKey('raw', recipient.publicKey.slice().buffer, true);
    const ikmE = rng.bytes(32);
    const plaintext = rng.bytes(32);
    const info = text('info');
    const aad = text('aad');
    const ours = hpkeSeal({ recipientPublicKey: recipient.publicKey, plaintext, info, aad, random: fixed(ikmE) });
    const theirs = await suite.seal({ recipientPublicKey: pk, info: info.slice().buffer, ekm: ikmE.slice().buffer }, plaintext.slice().buffer, aad.slice().buffer);
    expect(hex(ours.enc)).toBe(hex(new Uint8Array(theirs.enc)));
    expect(hex(ours.ciphertext)).toBe(hex(new Uint8Array(theirs.ct)));
  });
});

describe('every failure is one IMPORT_DECRYPT_FAILED', () => {
  const recipient = x25519DeriveKeyPair(rng.bytes(32));
  const plaintext = rng.bytes(32);
  const info = text('openkey import');
  const aad = rng.bytes(24);
  const { enc, ciphertext } = hpkeSeal({ recipientPublicKey: recipient.publicKey, plaintext, info, aad });
  const open = (o: { enc?: Uint8Array; ciphertext?: Uint8Array; info?: Uint8Array; aad?: Uint8Array; key?: Uint8Array }): Uint8Array =>
    hpkeOpen({ recipientPrivateKey: o.key ?? recipient.privateKey, enc: o.enc ?? enc, ciphertext: o.ciphertext ?? ciphertext, info: o.info ?? info, aad: o.aad ?? aad });
  const flip = (b: Uint8Array, i: number, bit: number): Uint8Array => {
    const c = Uint8Array.from(b);
    c[i] = (c[i] as number) ^ (1 << bit);
    return c;
  };

  it('round trip sanity', () => {
    expect(hex(open({}))).toBe(hex(plaintext));
  });
  it('flip any bit of enc (skipping bit 255, which X25519 ignores per RFC 7748 §5)', () => {
    for (let i = 0; i < enc.length; i++) for (let bit = 0; bit < 8; bit++) {
      if (i === 31 && bit === 7) continue;
      expectCode(() => open({ enc: flip(enc, i, bit) }), 'IMPORT_DECRYPT_FAILED');
    }
  });
  it('flip any byte of the ciphertext or tag', () => {
    for (let i = 0; i < ciphertext.length; i++) expectCode(() => open({ ciphertext: flip(ciphertext, i, i % 8) }), 'IMPORT_DECRYPT_FAILED');
  });
  it('flip any byte of aad or info; drop or add aad', () => {
    for (let i = 0; i < aad.length; i++) expectCode(() => open({ aad: flip(aad, i, 3) }), 'IMPORT_DECRYPT_FAILED');
    for (let i = 0; i < info.length; i++) expectCode(() => open({ info: flip(info, i, 0) }), 'IMPORT_DECRYPT_FAILED');
    expectCode(() => open({ aad: new Uint8Array(0) }), 'IMPORT_DECRYPT_FAILED');
    expectCode(() => open({ aad: new Uint8Array([...aad, 0]) }), 'IMPORT_DECRYPT_FAILED');
  });
  it('truncate the ciphertext anywhere, wrong enc length, wrong or malformed key', () => {
    for (let n = 0; n < ciphertext.length; n++) expectCode(() => open({ ciphertext: ciphertext.subarray(0, n) }), 'IMPORT_DECRYPT_FAILED');
    for (const n of [0, 31, 33, 65]) expectCode(() => open({ enc: new Uint8Array(n).fill(9) }), 'IMPORT_DECRYPT_FAILED');
    expectCode(() => open({ key: x25519DeriveKeyPair(rng.bytes(32)).privateKey }), 'IMPORT_DECRYPT_FAILED');
    expectCode(() => open({ key: new Uint8Array(31) }), 'IMPORT_DECRYPT_FAILED');
  });
  it('small-order enc (all-zero shared secret, RFC 9180 §7.1.4) and oversize input', () => {
    expectCode(() => open({ enc: new Uint8Array(32) }), 'IMPORT_DECRYPT_FAILED');
    const one = new Uint8Array(32);
    one[0] = 1;
    expectCode(() => open({ enc: one }), 'IMPORT_DECRYPT_FAILED');
    expectCode(() => open({ ciphertext: new Uint8Array(HPKE_MAX_PLAINTEXT + 17) }), 'IMPORT_DECRYPT_FAILED');
  });
  it('a recipient object opens repeatedly and refuses after destroy', () => {
    const r = createHpkeRecipient(recipient.privateKey);
    expect(hex(r.publicKey)).toBe(hex(recipient.publicKey));
    expect(hex(r.open({ enc, ciphertext, info, aad }))).toBe(hex(plaintext));
    expect(hex(r.open({ enc, ciphertext, info, aad }))).toBe(hex(plaintext));
    r.destroy();
    expectCode(() => r.open({ enc, ciphertext, info, aad }), 'IMPORT_DECRYPT_FAILED');
  });
  it('seal refuses a small-order recipient key', () => {
    expectCode(() => hpkeSeal({ recipientPublicKey: new Uint8Array(32), plaintext }), 'INVALID_PUBLIC_KEY');
    expectCode(() => hpkeSeal({ recipientPublicKey: new Uint8Array(31), plaintext }), 'INVALID_PUBLIC_KEY');
  });
});
