// The encode-once shortcut must produce exactly what protobuf-es would: the receipt signs the
// digest of the response with its receipt unset, and the kept bytes equal a fresh toBinary of the
// receipted response, for every receipted response type and for SignStream answers.

import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ReceiptSchema, type Receipt } from '../../../proto/gen/openkey/v1/common_pb.ts';
import { CreateGrantResponseSchema, DelegateResponseSchema, RevokeGrantResponseSchema } from '../../../proto/gen/openkey/v1/delegation_pb.ts';
import { KeyAlgorithm } from '../../../proto/gen/openkey/v1/common_pb.ts';
import { SealKeyResponseSchema } from '../../../proto/gen/openkey/v1/keys_pb.ts';
import { GrantResponseSchema, RevokeResponseSchema, SetOwnerRuleResponseSchema } from '../../../proto/gen/openkey/v1/policy_pb.ts';
import { OpenSessionResponseSchema } from '../../../proto/gen/openkey/v1/principals_pb.ts';
import { SignBatchResponseSchema, SignResponseSchema, SignStreamResponseSchema, StreamErrorSchema } from '../../../proto/gen/openkey/v1/signing_pb.ts';
import { attachReceipt, responseBytes } from './encoded.ts';

const sha256 = (b: Uint8Array) => new Uint8Array(createHash('sha256').update(b).digest());

function fakeReceipt(responseDigest: Uint8Array): Receipt {
  return create(ReceiptSchema, { version: 1, method: '/m', requestDigest: randomBytes(32), responseDigest, keyId: 'key_x', decision: 'allow', timeMs: 1_700_000_000_000n, signature: randomBytes(64), batchIndex: 3, batchSize: 5, batchPath: [randomBytes(32), randomBytes(32), randomBytes(32)] });
}

function signResponse(i: number) {
  return create(SignResponseSchema, { signature: randomBytes(65), digest: randomBytes(32), keyId: `key_${i.toString(16).padStart(32, '0')}` });
}

/** Attaches a receipt and checks both the digest it signed and the kept bytes. */
async function check<D extends DescMessage>(schema: D, res: MessageShape<D> & { receipt?: Receipt | undefined }): Promise<void> {
  const unreceipted = toBinary(schema, res);
  let signed: Uint8Array | undefined;
  await attachReceipt(schema, res, (d) => {
    signed = d;
    return fakeReceipt(d);
  });
  expect(signed).toEqual(sha256(unreceipted));
  expect(res.receipt?.responseDigest).toEqual(signed);
  const kept = responseBytes(schema, res);
  expect(Buffer.from(kept).equals(Buffer.from(toBinary(schema, res)))).toBe(true);
  expect((fromBinary(schema, kept) as { receipt?: Receipt }).receipt?.signature).toEqual(new Uint8Array(res.receipt?.signature ?? []));
}

describe('encode once', () => {
  it('keeps exactly the canonical bytes of a receipted Sign and SignBatch response', async () => {
    await check(SignResponseSchema, signResponse(1));
    await check(SignBatchResponseSchema, create(SignBatchResponseSchema, { results: Array.from({ length: 64 }, (_, i) => signResponse(i)) }));
    await check(SignResponseSchema, create(SignResponseSchema, {})); // every field at its default
  });

  it('does so for every other receipted response the appliance sends', async () => {
    await check(SealKeyResponseSchema, create(SealKeyResponseSchema, { key: { keyId: 'key_1', algorithm: KeyAlgorithm.SECP256K1, publicKey: randomBytes(33), label: 'l' } }));
    await check(OpenSessionResponseSchema, create(OpenSessionResponseSchema, {}));
    for (const s of [GrantResponseSchema, RevokeResponseSchema, SetOwnerRuleResponseSchema, CreateGrantResponseSchema, RevokeGrantResponseSchema, DelegateResponseSchema] as const) {
      await check(s as DescMessage, create(s as DescMessage) as MessageShape<DescMessage> & { receipt?: Receipt });
    }
  });

  it('replaces a receipt already set: the digest covers the response without it', async () => {
    const res = signResponse(2);
    res.receipt = fakeReceipt(randomBytes(32));
    const without = toBinary(SignResponseSchema, { ...res, receipt: undefined });
    let signed: Uint8Array | undefined;
    await attachReceipt(SignResponseSchema, res, (d) => ((signed = d), fakeReceipt(d)));
    expect(signed).toEqual(sha256(without));
  });

  it('builds a SignStream answer from its result kept bytes, equal to a fresh encoding', async () => {
    const result = signResponse(3);
    await attachReceipt(SignResponseSchema, result, fakeReceipt);
    for (const id of [1n, 300n, 2n ** 63n + 5n]) {
      const answer = create(SignStreamResponseSchema, { id, outcome: { case: 'result', value: result } });
      expect(Buffer.from(responseBytes(SignStreamResponseSchema, answer)).equals(Buffer.from(toBinary(SignStreamResponseSchema, answer)))).toBe(true);
    }
    const refused = create(SignStreamResponseSchema, { id: 7n, outcome: { case: 'error', value: create(StreamErrorSchema, { code: 'KEY_NOT_FOUND', message: 'KEY_NOT_FOUND' }) } });
    expect(responseBytes(SignStreamResponseSchema, refused)).toEqual(toBinary(SignStreamResponseSchema, refused));
  });

  it('falls back to a fresh encoding for a message it did not receipt', async () => {
    const res = signResponse(4);
    expect(responseBytes(SignResponseSchema, res)).toEqual(toBinary(SignResponseSchema, res));
  });
});
