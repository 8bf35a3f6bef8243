// The receipt signer: receipts asked for in one turn share one Ed25519 signature over a tree root
// (version 2), a receipt asked for alone is signed alone (version 1), and each verifies with noble's
// Ed25519 (an independent implementation) through its own inclusion proof.

import { ed25519 } from '@noble/curves/ed25519';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { batchSigningInput, receiptLeafHash, receiptSigningInput, rootFromPath } from '../../../proto/protocol/receipt.ts';
import { createEd25519Signer } from './crypto/ed25519.ts';
import { MAX_RECEIPT_BATCH, ReceiptSigner, type SignedReceipt } from './receipts.ts';

const identity = createEd25519Signer(randomBytes(32));
const clock = { now: () => 1_700_000_000_000 };
const ask = (i: number) => ({ method: '/openkey.v1.SignService/Sign', requestDigest: randomBytes(32), responseDigest: randomBytes(32), keyId: `key_${i}`, decision: 'allow' });

/** Verifies a receipt the way a client does, with an independent Ed25519. */
function verifies(r: SignedReceipt): boolean {
  const input = receiptSigningInput(r);
  if (r.version === 1) return r.batch === undefined && ed25519.verify(r.signature, input, identity.publicKey);
  if (r.version !== 2 || r.batch === undefined) return false;
  const root = rootFromPath(receiptLeafHash(input), r.batch.index, r.batch.size, r.batch.path);
  return root !== undefined && ed25519.verify(r.signature, batchSigningInput(root, r.batch.size), identity.publicKey);
}

describe('ReceiptSigner', () => {
  it('signs a receipt asked for alone on its own (version 1)', async () => {
    const r = await new ReceiptSigner(identity, clock).sign(ask(0));
    expect(r.version).toBe(1);
    expect(verifies(r)).toBe(true);
  });

  it('signs the receipts of one turn together: one signature, a proof each, every one verifies', async () => {
    const signer = new ReceiptSigner(identity, clock);
    const asked = Array.from({ length: 37 }, (_, i) => ask(i));
    const rs = await Promise.all(asked.map((a) => signer.sign(a)));
    expect(new Set(rs.map((r) => Buffer.from(r.signature).toString('hex'))).size).toBe(1);
    rs.forEach((r, i) => {
      expect(r.version).toBe(2);
      expect(r.batch).toMatchObject({ index: i, size: 37 });
      expect(r.keyId).toBe(asked[i]?.keyId);
      expect(verifies(r)).toBe(true);
    });
    // Each proof belongs to its own receipt: swap two receipts' proofs and both fail.
    const [a, b] = rs as [SignedReceipt, SignedReceipt];
    expect(verifies({ ...a, batch: b.batch as NonNullable<SignedReceipt['batch']> })).toBe(false);
    expect(verifies({ ...a, keyId: 'key_other' })).toBe(false);
  });

  it('starts a new tree past the batch bound, and the next turn starts afresh', async () => {
    const signer = new ReceiptSigner(identity, clock);
    const rs = await Promise.all(Array.from({ length: MAX_RECEIPT_BATCH + 3 }, (_, i) => signer.sign(ask(i))));
    expect(rs[0]?.batch?.size).toBe(MAX_RECEIPT_BATCH);
    expect(rs[MAX_RECEIPT_BATCH]?.batch).toMatchObject({ index: 0, size: 3 });
    expect(verifies(rs[MAX_RECEIPT_BATCH + 2] as SignedReceipt)).toBe(true);
    expect((await signer.sign(ask(1))).version).toBe(1);
  });

  it('fails every receipt of a turn when the identity key cannot sign, and recovers after', async () => {
    let broken = true;
    const flaky = { sign: (m: Uint8Array) => (broken ? (() => { throw new Error('key gone'); })() : identity.sign(m)), destroy: () => undefined };
    const signer = new ReceiptSigner(flaky, clock);
    const results = await Promise.allSettled([signer.sign(ask(1)), signer.sign(ask(2))]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    broken = false;
    expect(verifies(await signer.sign(ask(3)))).toBe(true);
  });
});
