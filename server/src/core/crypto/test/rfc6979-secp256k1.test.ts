// secp256k1 signing (RFC 6979 deterministic, low-S per EIP-2, v = 27/28): the native and noble
// backends agree byte for byte, ethers' signer produces the same bytes, viem and ethers recover
// the right address, and hostile keys and digests fail with their codes.

import { describe, expect, it } from 'vitest';
import { SigningKey, recoverAddress as ethersRecover } from 'ethers';
import { privateKeyToAddress } from 'viem/accounts';
import { recoverAddress as viemRecover } from 'viem';
import { secp256k1 as noble } from '@noble/curves/secp256k1';
import { createNativeSecp256k1Backend, createNobleSecp256k1Backend, loadSecp256k1 } from '../secp256k1.ts';
import { addressFromPublicKey } from '../address.ts';
import { Prng, expectCode, hex, hex0x, unhex } from './helpers.ts';

const native = createNativeSecp256k1Backend();
const js = createNobleSecp256k1Backend();
const N = noble.CURVE.n;
const HALF_N = N >> 1n;
const toKey = (n: bigint): Uint8Array => unhex(n.toString(16).padStart(64, '0'));

describe('backend selection', () => {
  it('loads libsecp256k1 through its N-API addon on this machine', () => {
    const { backend, nativeError } = loadSecp256k1();
    expect(nativeError).toBeUndefined();
    expect(backend.name).toBe('native');
  });
  it('uses noble when asked', () => {
    expect(loadSecp256k1({ prefer: 'noble' }).backend.name).toBe('noble');
  });
});

describe('differential: native and noble sign identically, oracles recover', () => {
  const rng = new Prng('rfc6979-differential');
  const cases = Array.from({ length: 500 }, () => {
    let key = rng.bytes(32);
    while (!js.isValidPrivateKey(key)) key = rng.bytes(32);
    return { key, digest: rng.bytes(32) };
  });

  it('byte-identical, low-S, v ∈ {27, 28}, equal to ethers SigningKey', () => {
    for (const { key, digest } of cases) {
      const a = native.sign(digest, key);
      const b = js.sign(digest, key);
      expect(hex(a)).toBe(hex(b));
      expect(a.length).toBe(65);
      expect([27, 28]).toContain(a[64]);
      const s = BigInt(hex0x(a.subarray(32, 64)));
      expect(s > 0n && s <= HALF_N).toBe(true);
      expect(hex0x(a)).toBe(new SigningKey(hex0x(key)).sign(hex0x(digest)).serialized);
    }
  });

  it('viem and ethers recover the signer address; both backends recover the public key', async () => {
    for (const { key, digest } of cases.slice(0, 60)) {
      const sig = native.sign(digest, key);
      const address = privateKeyToAddress(hex0x(key));
      expect(await viemRecover({ hash: hex0x(digest), signature: hex0x(sig) })).toBe(address);
      expect(ethersRecover(hex0x(digest), hex0x(sig))).toBe(address);
      const pub = native.getPublicKey(key, false);
      expect(hex(js.getPublicKey(key, false))).toBe(hex(pub));
      expect(hex(js.getPublicKey(key, true))).toBe(hex(native.getPublicKey(key, true)));
      expect(hex(native.recover(digest, sig))).toBe(hex(pub));
      expect(hex(js.recover(digest, sig))).toBe(hex(pub));
      expect(addressFromPublicKey(pub)).toBe(address);
    }
  });

  it('keys at the edges of the range sign identically: 1, n − 1, n/2', () => {
    const digest = unhex('11'.repeat(32));
    for (const k of [1n, N - 1n, HALF_N, HALF_N + 1n]) {
      expect(hex(native.sign(digest, toKey(k)))).toBe(hex(js.sign(digest, toKey(k))));
    }
  });
});

describe('known answer: the EIP-712 specification example', () => {
  it('signs the Mail digest with keccak256("cow") to the published signature', () => {
    const key = unhex('c85ef7d79691fe79573b1a7064c19c1a9819ebdbd1faaab1a8ec92344438aaf4');
    const digest = unhex('be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2');
    const published =
      '4355c47d63924e8a72e509b65029052eb6c299d53a04e167c5775fd466751c9d07299936d304c153f6443dfa05f40ff007d72911b6f72307f996231605b915621c';
    expect(hex(native.sign(digest, key))).toBe(published);
    expect(hex(js.sign(digest, key))).toBe(published);
  });
});

describe('hostile inputs', () => {
  const digest = new Uint8Array(32).fill(7);
  const badKeys: [string, Uint8Array][] = [
    ['zero', new Uint8Array(32)],
    ['n', toKey(N)],
    ['n + 1', toKey(N + 1n)],
    ['2^256 − 1', new Uint8Array(32).fill(0xff)],
  ];
  for (const backend of [native, js]) {
    describe(backend.name, () => {
      it.each(badKeys)('private key %s ⇒ INVALID_PRIVATE_KEY', (_name, key) => {
        expect(backend.isValidPrivateKey(key)).toBe(false);
        expectCode(() => backend.sign(digest, key), 'INVALID_PRIVATE_KEY');
        expectCode(() => backend.getPublicKey(key, true), 'INVALID_PRIVATE_KEY');
      });
      it('private key of the wrong length ⇒ INVALID_PRIVATE_KEY', () => {
        for (const n of [0, 31, 33, 64]) {
          const key = new Uint8Array(n).fill(1);
          expect(backend.isValidPrivateKey(key)).toBe(false);
          expectCode(() => backend.sign(digest, key), 'INVALID_PRIVATE_KEY');
        }
      });
      it('digest that is not 32 bytes ⇒ INVALID_DIGEST_LENGTH', () => {
        const key = toKey(12345n);
        for (const n of [0, 1, 31, 33, 64]) expectCode(() => backend.sign(new Uint8Array(n), key), 'INVALID_DIGEST_LENGTH');
        expectCode(() => backend.sign('00'.repeat(32) as unknown as Uint8Array, key), 'INVALID_DIGEST_LENGTH');
      });
      it('recover rejects bad v, lengths and r/s out of range', () => {
        const key = toKey(99n);
        const sig = backend.sign(digest, key);
        for (const v of [2, 26, 29, 255]) {
          const bad = Uint8Array.from(sig);
          bad[64] = v;
          expectCode(() => backend.recover(digest, bad), 'MALFORMED_REQUEST');
        }
        expectCode(() => backend.recover(digest, sig.subarray(0, 64)), 'MALFORMED_REQUEST');
        const zeroR = Uint8Array.from(sig);
        zeroR.fill(0, 0, 32);
        expectCode(() => backend.recover(digest, zeroR), 'MALFORMED_REQUEST');
        const bigS = Uint8Array.from(sig);
        bigS.set(toKey(N), 32);
        expectCode(() => backend.recover(digest, bigS), 'MALFORMED_REQUEST');
        expectCode(() => backend.recover(new Uint8Array(31), sig), 'INVALID_DIGEST_LENGTH');
        // v = 0/1 is accepted as the raw recovery id.
        const raw = Uint8Array.from(sig);
        raw[64] = (sig[64] as number) - 27;
        expect(hex(backend.recover(digest, raw))).toBe(hex(backend.getPublicKey(key, false)));
      });
    });
  }
});
