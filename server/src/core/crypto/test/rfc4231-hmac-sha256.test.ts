// The request path's SHA-256 and HMAC-SHA256 (crypto/sha256.ts, built on node:crypto's one-shot
// hash): the RFC 4231 HMAC-SHA-256 vectors and FIPS 180-4's "abc", then a differential check
// against two independent implementations (node:crypto's createHmac and @noble/hashes) over
// generated keys and messages, with keys on both sides of the 64-byte block.

import { hmac } from '@noble/hashes/hmac';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2';
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { hmacSha256, sha256 } from '../sha256.ts';
import { Prng, hex, unhex } from './helpers.ts';

const utf8 = (s: string) => new TextEncoder().encode(s);
const fill = (byte: number, n: number) => new Uint8Array(n).fill(byte);

describe('sha256 (one-shot)', () => {
  it('matches FIPS 180-4 on "abc" and the empty string', () => {
    expect(hex(sha256(utf8('abc')))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(hex(sha256(new Uint8Array(0)))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('hashes the concatenation of its parts, and returns a plain Uint8Array', () => {
    const whole = sha256(utf8('abc'));
    expect(sha256(utf8('a'), utf8(''), utf8('bc'))).toEqual(whole);
    expect(Object.getPrototypeOf(whole)).toBe(Uint8Array.prototype);
  });
});

describe('hmacSha256 against RFC 4231', () => {
  const cases: [name: string, key: Uint8Array, data: Uint8Array, mac: string][] = [
    ['1', fill(0x0b, 20), utf8('Hi There'), 'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7'],
    ['2', utf8('Jefe'), utf8('what do ya want for nothing?'), '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843'],
    ['3', fill(0xaa, 20), fill(0xdd, 50), '773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe'],
    ['4', unhex('0102030405060708090a0b0c0d0e0f10111213141516171819'), fill(0xcd, 50), '82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b'],
    ['6 (key longer than a block)', fill(0xaa, 131), utf8('Test Using Larger Than Block-Size Key - Hash Key First'), '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54'],
    [
      '7 (key and data longer than a block)',
      fill(0xaa, 131),
      utf8('This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.'),
      '9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2',
    ],
  ];
  for (const [name, key, data, mac] of cases) {
    it(`test case ${name}`, () => {
      expect(hex(hmacSha256(key, data))).toBe(mac);
    });
  }
});

describe('hmacSha256 against node:crypto and @noble/hashes', () => {
  it('agrees on generated keys (0–200 bytes) and messages (0–300 bytes)', () => {
    const prng = new Prng('hmac-sha256');
    for (let i = 0; i < 300; i++) {
      const key = prng.bytes(prng.int(201));
      const msg = prng.bytes(prng.int(301));
      const ours = hex(hmacSha256(key, msg));
      expect(ours).toBe(createHmac('sha256', key).update(msg).digest('hex'));
      expect(ours).toBe(hex(hmac(nobleSha256, key, msg)));
    }
  });

  it('leaves the caller’s key untouched (only its own padded copies are zeroed)', () => {
    const key = fill(0x42, 32);
    hmacSha256(key, utf8('m'));
    expect(key).toEqual(fill(0x42, 32));
  });
});
