// Keccak-256 (Keccak team's submission padding, as Ethereum uses it): known answers, and agreement
// with @noble/hashes at every input length across the first rate-block boundaries and beyond.

import { describe, expect, it } from 'vitest';
import { keccak_256 } from '@noble/hashes/sha3';
import { keccak256, keccak256Into } from '../keccak.ts';
import { Prng, hex } from './helpers.ts';

describe('keccak256', () => {
  it('known answers', () => {
    expect(hex(keccak256(new Uint8Array(0)))).toBe('c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470');
    expect(hex(keccak256(Buffer.from('abc')))).toBe('4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45');
    // EIP-712's own example: keccak256("cow") is the example's private key.
    expect(hex(keccak256(Buffer.from('cow')))).toBe('c85ef7d79691fe79573b1a7064c19c1a9819ebdbd1faaab1a8ec92344438aaf4');
  });

  it('agrees with @noble/hashes for every length 0..600 (rate is 136 bytes)', () => {
    const rng = new Prng('keccak-lengths');
    for (let n = 0; n <= 600; n++) {
      const data = rng.bytes(n);
      expect(hex(keccak256(data)), `length ${n}`).toBe(hex(keccak_256(data)));
    }
  });

  it('agrees on large inputs, and 0xff-filled inputs at block edges', () => {
    const rng = new Prng('keccak-large');
    for (const n of [1000, 4096, 65_537]) {
      const data = rng.bytes(n);
      expect(hex(keccak256(data))).toBe(hex(keccak_256(data)));
    }
    for (const n of [135, 136, 137, 271, 272, 273]) {
      const data = new Uint8Array(n).fill(0xff);
      expect(hex(keccak256(data))).toBe(hex(keccak_256(data)));
    }
  });

  it('keccak256Into hashes a region into a region and checks bounds', () => {
    const data = new Uint8Array(300).map((_, i) => i & 0xff);
    const out = new Uint8Array(40).fill(0xaa);
    keccak256Into(data, 17, 200, out, 5);
    expect(hex(out.subarray(5, 37))).toBe(hex(keccak_256(data.subarray(17, 217))));
    expect(out[4]).toBe(0xaa);
    expect(out[37]).toBe(0xaa);
    expect(() => keccak256Into(data, 200, 101, out, 0)).toThrow(RangeError);
    expect(() => keccak256Into(data, 0, 1, out, 9)).toThrow(RangeError);
  });
});
