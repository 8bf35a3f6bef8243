// did:key (W3C CCG did:key method) for Ed25519 and secp256k1 against the method's published test
// vectors, did:pkh (CAIP-10 under eip155) against viem addresses, base58btc, and hostile DIDs.

import { describe, expect, it } from 'vitest';
import { privateKeyToAddress } from 'viem/accounts';
import { didKey, didKeyVerificationMethod, didPkh, didPkhFromPublicKey, parseDidKey, parseDidPkh } from '../did.ts';
import { base58btcDecode, base58btcEncode } from '../base58.ts';
import { ed25519PublicKey } from '../ed25519.ts';
import { loadSecp256k1 } from '../secp256k1.ts';
import { Prng, expectCode, hex, hex0x, member, readVectors, rows, unhex } from './helpers.ts';

const file = readVectors('did-key.json');
const edVectors = rows(member(file, 'ed25519'), ['seed', 'did', 'publicKeyBase58']);
const kVectors = rows(member(file, 'secp256k1'), ['seed', 'did', 'publicKeyBase58']);
const { backend } = loadSecp256k1();

describe('base58btc', () => {
  it('known encodings and round trips, leading zeros preserved', () => {
    expect(base58btcEncode(new Uint8Array(0))).toBe('');
    expect(base58btcEncode(new Uint8Array([0]))).toBe('1');
    expect(base58btcEncode(new Uint8Array([0, 0, 1]))).toBe('112');
    expect(base58btcEncode(Buffer.from('hello world'))).toBe('StV1DL6CwTryKyV');
    const rng = new Prng('base58');
    for (let i = 0; i < 200; i++) {
      const b = rng.bytes(rng.int(40));
      if (rng.bool() && b.length > 0) b[0] = 0;
      expect(hex(base58btcDecode(base58btcEncode(b), 100))).toBe(hex(b));
    }
  });
  it('rejects characters outside the alphabet and over-long input', () => {
    for (const bad of ['0', 'O', 'I', 'l', 'abc+', 'é']) expectCode(() => base58btcDecode(bad, 100), 'MALFORMED_REQUEST');
    expectCode(() => base58btcDecode('1'.repeat(101), 100), 'MALFORMED_REQUEST');
  });
});

describe('did:key test vectors', () => {
  it.each(edVectors)('Ed25519 $did', (v) => {
    const pub = ed25519PublicKey(unhex(v.seed));
    expect(hex(pub)).toBe(hex(base58btcDecode(v.publicKeyBase58, 64)));
    expect(didKey('ed25519', pub)).toBe(v.did);
    const parsed = parseDidKey(v.did);
    expect(parsed.algorithm).toBe('ed25519');
    expect(hex(parsed.publicKey)).toBe(hex(pub));
    expect(v.did.startsWith('did:key:z6Mk')).toBe(true);
    const fragment = v.did.slice('did:key:'.length);
    expect(didKeyVerificationMethod(v.did)).toBe(`${v.did}#${fragment}`);
  });

  it.each(kVectors)('secp256k1 $did', (v) => {
    const pub = backend.getPublicKey(unhex(v.seed), true);
    expect(hex(pub)).toBe(hex(base58btcDecode(v.publicKeyBase58, 64)));
    expect(didKey('secp256k1', pub)).toBe(v.did);
    const parsed = parseDidKey(v.did);
    expect(parsed.algorithm).toBe('secp256k1');
    expect(hex(parsed.publicKey)).toBe(hex(pub));
  });
});

describe('did:pkh', () => {
  it('uses the EIP-55 address viem derives, chain 1 by default', () => {
    const key = new Prng('did-pkh').bytes(32);
    const address = privateKeyToAddress(hex0x(key));
    expect(didPkhFromPublicKey(backend.getPublicKey(key, false))).toBe(`did:pkh:eip155:1:${address}`);
    expect(didPkh(address.toLowerCase(), 137)).toBe(`did:pkh:eip155:137:${address}`);
    expect(parseDidPkh(`did:pkh:eip155:1:${address.toLowerCase()}`)).toEqual({ chainId: 1n, address });
  });
  it('rejects bad chain ids and addresses', () => {
    const a = '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed';
    expectCode(() => didPkh(a, 0), 'MALFORMED_REQUEST');
    expectCode(() => didPkh(a, 1.5), 'MALFORMED_REQUEST');
    expectCode(() => didPkh('0x5aaeb6053F3E94C9b9A09f33669435E7Ef1BeAed'), 'MALFORMED_REQUEST');
    for (const bad of ['did:pkh:eip155:0:' + a, 'did:pkh:eip155:01:' + a, 'did:pkh:solana:1:' + a, `did:pkh:eip155:1:${a}x`]) {
      expectCode(() => parseDidPkh(bad), 'MALFORMED_REQUEST');
    }
  });
});

describe('hostile did:key input', () => {
  const good = edVectors[0]?.did ?? '';
  it.each([
    ['empty', ''],
    ['wrong method', good.replace('did:key:', 'did:web:')],
    ['not base58btc (multibase f)', 'did:key:f' + 'ab'.repeat(34)],
    ['character outside base58', good.slice(0, -1) + '0'],
    ['too long', 'did:key:z' + '2'.repeat(200)],
    ['key one byte short', 'did:key:z' + base58btcEncode(new Uint8Array([0xed, 0x01, ...new Uint8Array(31).fill(1)]))],
    ['extra bytes', 'did:key:z' + base58btcEncode(new Uint8Array([0xed, 0x01, ...new Uint8Array(33)]))],
    ['compressed secp256k1 key given as 65 bytes', 'did:key:z' + base58btcEncode(new Uint8Array([0xe7, 0x01, 4, ...new Uint8Array(64).fill(1)]))],
  ])('%s ⇒ MALFORMED_REQUEST', (_name, did) => {
    expectCode(() => parseDidKey(did), 'MALFORMED_REQUEST');
  });
  it('another multicodec (P-256 0x1200, X25519 0xec, or a leading zero byte) ⇒ UNSUPPORTED_ALGORITHM', () => {
    expectCode(() => parseDidKey('did:key:z1' + good.slice('did:key:z'.length)), 'UNSUPPORTED_ALGORITHM');
    expectCode(() => parseDidKey('did:key:z' + base58btcEncode(new Uint8Array([0x80, 0x24, 2, ...new Uint8Array(32).fill(1)]))), 'UNSUPPORTED_ALGORITHM');
    expectCode(() => parseDidKey('did:key:z' + base58btcEncode(new Uint8Array([0xec, 0x01, ...new Uint8Array(32).fill(1)]))), 'UNSUPPORTED_ALGORITHM');
  });
  it('bytes that are not a point ⇒ INVALID_PUBLIC_KEY', () => {
    const notX = new Uint8Array(33).fill(0xff);
    notX[0] = 2;
    expectCode(() => parseDidKey('did:key:z' + base58btcEncode(new Uint8Array([0xe7, 0x01, ...notX]))), 'INVALID_PUBLIC_KEY');
    // y = 2^255 − 1 ≥ p is not a canonical Ed25519 encoding.
    const nonCanonical = new Uint8Array(32).fill(0xff);
    nonCanonical[31] = 0x7f;
    expectCode(() => parseDidKey('did:key:z' + base58btcEncode(new Uint8Array([0xed, 0x01, ...nonCanonical]))), 'INVALID_PUBLIC_KEY');
    expectCode(() => didKey('secp256k1', backend.getPublicKey(new Uint8Array(32).fill(3), false)), 'INVALID_PUBLIC_KEY');
  });
});
