// Receipts (proto/protocol/receipt.ts): the appliance identity key signs a canonical record of
// method, request digest, response digest, key id, decision and time for every response, so a
// client that pinned the attested identity key can check each answer on its own.

import { RECEIPT_VERSION, receiptSigningInput } from '../../../proto/protocol/receipt.ts';
import type { UsableKey } from './keys.ts';
import type { Clock } from './ports.ts';

export interface ReceiptRequest {
  readonly method: string;
  readonly requestDigest: Uint8Array;
  readonly responseDigest: Uint8Array;
  readonly keyId: string;
  readonly decision: string;
}

export interface SignedReceipt extends ReceiptRequest {
  readonly version: number;
  readonly timeMs: number;
  readonly signature: Uint8Array;
}

export class ReceiptSigner {
  constructor(
    private readonly identity: UsableKey,
    private readonly clock: Clock,
  ) {}

  sign(r: ReceiptRequest): SignedReceipt {
    const timeMs = this.clock.now();
    const signature = this.identity.sign(receiptSigningInput({ ...r, timeMs }));
    return { ...r, version: RECEIPT_VERSION, timeMs, signature };
  }
}
