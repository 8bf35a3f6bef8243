// Receipts: the appliance identity key's signature over what was asked and what was answered.
// A client that has verified the appliance's attestation pins the identity key and checks the
// receipt on every response (see clients/). Both sides build the signing input here.

import { CanonicalWriter } from './encoding.ts';

export const RECEIPT_VERSION = 1;
const RECEIPT_TAG = 'openkey-receipt-v1';

export interface ReceiptFields {
  readonly method: string;
  readonly requestDigest: Uint8Array;
  readonly responseDigest: Uint8Array;
  readonly keyId: string;
  readonly decision: string;
  readonly timeMs: number;
}

export function receiptSigningInput(r: ReceiptFields): Uint8Array {
  return new CanonicalWriter(RECEIPT_TAG)
    .string(r.method)
    .bytes(r.requestDigest)
    .bytes(r.responseDigest)
    .string(r.keyId)
    .string(r.decision)
    .u64(r.timeMs)
    .finish();
}
