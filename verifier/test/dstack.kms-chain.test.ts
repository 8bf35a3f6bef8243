// Reference §2.2: the dstack GetKey signature chain, checked on the simulator vector
// (expected.json getkey_signature_chain; keys asserted in dstack's Go SDK tests).

import { describe, expect, it } from 'vitest';

import { fromHex, toHex } from '../src/bytes.ts';
import { verifyKmsSignatureChain, type KmsChainInput } from '../src/dstack/kms-chain.ts';
import { EXPECTED } from './helpers/vectors.ts';
import { codeOf } from './helpers/codes.ts';

const g = EXPECTED.getkey_signature_chain;
const h = (s: string): Uint8Array => fromHex(s, 'INVALID_ARGUMENT');
const input = (over: Partial<KmsChainInput> = {}): KmsChainInput => ({
  publicKey: h(g.secp256k1.derived_pubkey_compressed),
  purpose: g.secp256k1.purpose,
  appId: h(g.app_id),
  signatureChain: g.secp256k1.signature_chain_expected.map(h),
  kmsRootPublicKey: h(g.kms_root_pubkey_recovered),
  ...over,
});

describe('dstack KMS signature chain', () => {
  it('recovers the app root and the pinned KMS root', () => {
    const r = verifyKmsSignatureChain(input());
    expect(toHex(r.appRootPublicKey)).toBe(g.app_root_pubkey_compressed);
    expect(toHex(r.kmsRootPublicKey)).toBe(g.kms_root_pubkey_recovered);
  });

  it('accepts the pinned root in uncompressed form too', async () => {
    const { secp256k1 } = await import('@noble/curves/secp256k1.js');
    const uncompressed = secp256k1.Point.fromBytes(h(g.kms_root_pubkey_recovered)).toBytes(false);
    expect(() => verifyKmsSignatureChain(input({ kmsRootPublicKey: uncompressed }))).not.toThrow();
  });

  it('another pinned KMS root → KMS_ROOT_MISMATCH', () => {
    expect(codeOf(() => verifyKmsSignatureChain(input({ kmsRootPublicKey: h(g.app_root_pubkey_compressed) })))).toBe('KMS_ROOT_MISMATCH');
  });

  it('another purpose, key or app id recovers other keys → KMS_ROOT_MISMATCH', () => {
    expect(codeOf(() => verifyKmsSignatureChain(input({ purpose: 'other' })))).toBe('KMS_ROOT_MISMATCH');
    const key = h(g.secp256k1.derived_pubkey_compressed);
    key[5]! ^= 1;
    expect(codeOf(() => verifyKmsSignatureChain(input({ publicKey: key })))).toBe('KMS_ROOT_MISMATCH');
    const appId = h(g.app_id);
    appId[0]! ^= 1;
    expect(codeOf(() => verifyKmsSignatureChain(input({ appId })))).toBe('KMS_ROOT_MISMATCH');
  });

  it('malformed chains → KMS_SIGNATURE_INVALID', () => {
    const [a, b] = g.secp256k1.signature_chain_expected.map(h) as [Uint8Array, Uint8Array];
    const badV = a.slice();
    badV[64] = 7;
    const zero = new Uint8Array(65);
    for (const chain of [[a], [a, b, b], [badV, b], [zero, b], [a.subarray(0, 64), b]]) {
      expect(codeOf(() => verifyKmsSignatureChain(input({ signatureChain: chain })))).toBe('KMS_SIGNATURE_INVALID');
    }
  });

  it('a pinned root that is not a curve point → INVALID_ARGUMENT', () => {
    expect(codeOf(() => verifyKmsSignatureChain(input({ kmsRootPublicKey: new Uint8Array(33) })))).toBe('INVALID_ARGUMENT');
  });
});
