// Receipts (proto/protocol/receipt.ts): the appliance identity key signs a canonical record of
// method, request digest, response digest, key id, decision and time for every response, so a
// client that pinned the attested identity key can check each answer on its own.
//
// Receipts asked for in the same turn of the event loop are signed together: one Ed25519
// signature over the root of a Merkle tree of their signing inputs (version 2), each receipt
// carrying its inclusion proof. Under load that turns one signature per response into one per
// turn; a receipt asked for alone is signed alone (version 1), as before.

import {
  BATCH_RECEIPT_VERSION,
  RECEIPT_VERSION,
  batchSigningInput,
  batchTree,
  receiptLeafHash,
  receiptSigningInput,
} from '../../../proto/protocol/receipt.ts';
import { sha256 } from './crypto/sha256.ts';
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
  /** Version 2: the receipt's leaf in the tree that was signed, and its inclusion proof. */
  readonly batch?: { readonly index: number; readonly size: number; readonly path: readonly Uint8Array[] };
}

/** Most receipts signed together: bounds a proof at 12 hashes and a turn's hashing work. */
export const MAX_RECEIPT_BATCH = 4096;

interface Pending {
  readonly request: ReceiptRequest;
  readonly resolve: (r: SignedReceipt) => void;
  readonly reject: (e: unknown) => void;
}

export class ReceiptSigner {
  #pending: Pending[] = [];
  #scheduled = false;

  constructor(
    private readonly identity: UsableKey,
    private readonly clock: Clock,
  ) {}

  /** The receipt, signed at the end of this turn together with the others asked for in it. */
  sign(r: ReceiptRequest): Promise<SignedReceipt> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ request: r, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    const all = this.#pending;
    this.#pending = [];
    for (let i = 0; i < all.length; i += MAX_RECEIPT_BATCH) {
      const group = all.slice(i, i + MAX_RECEIPT_BATCH);
      try {
        const signed = this.#signGroup(group.map((p) => p.request));
        group.forEach((p, j) => p.resolve(signed[j] as SignedReceipt));
      } catch (e) {
        for (const p of group) p.reject(e);
      }
    }
  }

  #signGroup(requests: readonly ReceiptRequest[]): SignedReceipt[] {
    const timeMs = this.clock.now();
    const inputs = requests.map((r) => receiptSigningInput({ ...r, timeMs }));
    if (requests.length === 1) {
      return [{ ...(requests[0] as ReceiptRequest), version: RECEIPT_VERSION, timeMs, signature: this.identity.sign(inputs[0] as Uint8Array) }];
    }
    const { root, paths } = batchTree(
      inputs.map((input) => receiptLeafHash(input, sha256)),
      sha256,
    );
    const signature = this.identity.sign(batchSigningInput(root, requests.length));
    return requests.map((r, index) => ({
      ...r,
      version: BATCH_RECEIPT_VERSION,
      timeMs,
      signature,
      batch: { index, size: requests.length, path: paths[index] as Uint8Array[] },
    }));
  }
}
