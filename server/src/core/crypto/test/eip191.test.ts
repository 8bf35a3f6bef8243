// EIP-191 personal_sign hashing (version 0x45), checked against viem and ethers, and signed
// messages recovered by viem to the signer's address.

import { describe, expect, it } from 'vitest';
import { hashMessage as viemHashMessage, recoverMessageAddress } from 'viem';
import { privateKeyToAddress } from 'viem/accounts';
import { hashMessage as ethersHashMessage } from 'ethers';
import { hashPersonalMessage } from '../eip191.ts';
import { loadSecp256k1 } from '../secp256k1.ts';
import { Prng, hex0x } from './helpers.ts';

describe('EIP-191 personal_sign hash', () => {
  it('matches viem and ethers for text, empty, multi-byte UTF-8 and binary messages', () => {
    const rng = new Prng('eip191');
    const texts = ['', 'hello', 'Hello, Bob!', 'ünïcødé ✓ 🦊', 'a'.repeat(1000), '\x19Ethereum Signed Message:\n'];
    for (const t of texts) {
      const bytes = new TextEncoder().encode(t);
      expect(hex0x(hashPersonalMessage(bytes))).toBe(viemHashMessage(t));
      expect(hex0x(hashPersonalMessage(bytes))).toBe(ethersHashMessage(t));
    }
    for (const n of [1, 9, 10, 99, 100, 136, 1000]) {
      const raw = rng.bytes(n);
      expect(hex0x(hashPersonalMessage(raw))).toBe(viemHashMessage({ raw }));
      expect(hex0x(hashPersonalMessage(raw))).toBe(ethersHashMessage(raw));
    }
  });

  it('a signed personal message recovers to the signer with viem', async () => {
    const { backend } = loadSecp256k1();
    const key = new Prng('eip191-key').bytes(32);
    const message = 'Sign in to OpenKey';
    const sig = backend.sign(hashPersonalMessage(new TextEncoder().encode(message)), key);
    expect(await recoverMessageAddress({ message, signature: hex0x(sig) })).toBe(privateKeyToAddress(hex0x(key)));
  });
});
