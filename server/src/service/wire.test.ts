import { create, toBinary } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { SignBatchResponseSchema, SignResponseSchema } from '../../../proto/gen/openkey/v1/signing_pb.ts';
import type { Signature } from '../core/signing.ts';
import { signBatchResponseToWire, signResponseToWire } from './wire.ts';

const secp: Signature = { keyId: 'key_0123456789abcdef0123456789abcdef', signature: new Uint8Array(65).fill(7), digest: new Uint8Array(32).fill(9) };
const ed25519: Signature = { keyId: 'key_fedcba9876543210fedcba9876543210', signature: new Uint8Array(64).fill(3), digest: new Uint8Array(0) };

describe('signature responses built without create()', () => {
  it('are the messages create() builds, field for field, and encode the same', () => {
    for (const s of [secp, ed25519, { keyId: '', signature: new Uint8Array(0), digest: new Uint8Array(0) }]) {
      const built = signResponseToWire(s);
      const expected = create(SignResponseSchema, { signature: s.signature, digest: s.digest, keyId: s.keyId });
      expect(built).toStrictEqual(expected);
      expect(Object.keys(built)).toEqual(Object.keys(expected));
      expect(toBinary(SignResponseSchema, built)).toEqual(toBinary(SignResponseSchema, expected));
    }
  });

  it('a batch of 0, 1 and 64 results, in order', () => {
    for (const n of [0, 1, 64]) {
      const sigs = Array.from({ length: n }, (_, i) => (i % 2 === 0 ? secp : ed25519));
      const built = signBatchResponseToWire(sigs);
      const expected = create(SignBatchResponseSchema, { results: sigs.map((s) => create(SignResponseSchema, { signature: s.signature, digest: s.digest, keyId: s.keyId })) });
      expect(built).toStrictEqual(expected);
      expect(toBinary(SignBatchResponseSchema, built)).toEqual(toBinary(SignBatchResponseSchema, expected));
    }
  });
});
