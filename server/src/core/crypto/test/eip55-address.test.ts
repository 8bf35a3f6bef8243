// Ethereum addresses: keccak256(uncompressed public key)[12:] in EIP-55 checksummed form, checked
// against viem; parsing accepts single-case or valid mixed case and rejects a wrong checksum.

import { describe, expect, it } from 'vitest';
import { getAddress, isAddress } from 'viem';
import { privateKeyToAddress } from 'viem/accounts';
import { addressFromPublicKey, checksumAddress, isValidAddress, normalizeAddress, parseAddress } from '../address.ts';
import { loadSecp256k1 } from '../secp256k1.ts';
import { Prng, expectCode, hex0x } from './helpers.ts';

const { backend } = loadSecp256k1();

describe('EIP-55 addresses', () => {
  it('address of a public key (compressed or not) equals viem privateKeyToAddress', () => {
    const rng = new Prng('eip55');
    for (let i = 0; i < 50; i++) {
      const key = rng.bytes(32);
      if (!backend.isValidPrivateKey(key)) continue;
      const expected = privateKeyToAddress(hex0x(key));
      expect(addressFromPublicKey(backend.getPublicKey(key, false))).toBe(expected);
      expect(addressFromPublicKey(backend.getPublicKey(key, true))).toBe(expected);
    }
  });

  it('checksums exactly like viem getAddress, on random 20-byte values', () => {
    const rng = new Prng('eip55-random');
    for (let i = 0; i < 200; i++) {
      const a = rng.bytes(20);
      expect(checksumAddress(a)).toBe(getAddress(hex0x(a)));
    }
  });

  it('EIP-55 examples from the specification', () => {
    for (const a of [
      '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed',
      '0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359',
      '0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB',
      '0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb',
    ]) {
      expect(normalizeAddress(a.toLowerCase())).toBe(a);
      expect(isValidAddress(a)).toBe(true);
    }
  });

  it('parsing: single case accepted, wrong mixed-case checksum and bad shapes rejected', () => {
    const good = '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed';
    expect(isValidAddress(good.toLowerCase())).toBe(true);
    expect(isValidAddress('0x' + good.slice(2).toUpperCase())).toBe(true);
    const flipped = '0x5aaeb6053F3E94C9b9A09f33669435E7Ef1BeAed'; // one letter's case changed
    expect(isValidAddress(flipped)).toBe(false);
    expect(isAddress(flipped)).toBe(false); // viem agrees
    for (const bad of [flipped, '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAe', '5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed', '0x' + 'g'.repeat(40), 42, null]) {
      expectCode(() => parseAddress(bad), 'MALFORMED_REQUEST');
    }
    expectCode(() => parseAddress(flipped, 'INVALID_TYPED_DATA'), 'INVALID_TYPED_DATA');
  });

  it('a public key that is not a curve point ⇒ INVALID_PUBLIC_KEY', () => {
    const notOnCurve = new Uint8Array(65).fill(1);
    notOnCurve[0] = 4;
    for (const k of [notOnCurve, new Uint8Array(33), new Uint8Array(64), new Uint8Array(0)]) expectCode(() => addressFromPublicKey(k), 'INVALID_PUBLIC_KEY');
  });
});
