// Receipts: the appliance identity key's signature over what was asked and what was answered.
// A client that has verified the appliance's attestation pins the identity key and checks the
// receipt on every response (see clients/). Both sides build the signing input here.

import { sha256 } from '@noble/hashes/sha2';
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

// ---- Receipts signed together (version 2) -------------------------------------------------------
// Under load the appliance signs the receipts of many responses with one signature: the receipts'
// signing inputs are the leaves of an RFC 9162 Merkle tree (leaf hash SHA-256(0x00 ‖ input), node
// hash SHA-256(0x01 ‖ left ‖ right)), the identity key signs the root, and each receipt carries its
// leaf index, the number of leaves and its inclusion proof.

export const BATCH_RECEIPT_VERSION = 2;
const BATCH_RECEIPT_TAG = 'openkey-receipt-batch-v2';
/** A tree of 2^32 leaves needs 32 hashes; anything longer is not a proof. */
export const MAX_BATCH_PATH = 32;

const LEAF = Uint8Array.of(0);
const NODE = Uint8Array.of(1);

/**
 * SHA-256 of the concatenation of `parts`. The default is @noble/hashes (it runs in browsers); the
 * appliance passes node:crypto's, which is about twice as fast on these short inputs.
 */
export type Sha256 = (...parts: Uint8Array[]) => Uint8Array;

const nobleSha256: Sha256 = (...parts) => {
  const h = sha256.create();
  for (const p of parts) h.update(p);
  return h.digest();
};

export function receiptLeafHash(signingInput: Uint8Array, hash: Sha256 = nobleSha256): Uint8Array {
  return hash(LEAF, signingInput);
}

function nodeHash(left: Uint8Array, right: Uint8Array, hash: Sha256 = nobleSha256): Uint8Array {
  return hash(NODE, left, right);
}

/** What the identity key signs for receipts signed together: the tree's root and size. */
export function batchSigningInput(root: Uint8Array, size: number): Uint8Array {
  return new CanonicalWriter(BATCH_RECEIPT_TAG).bytes(root).u64(size).finish();
}

/** The root of the tree over `leaves` (at least one), and each leaf's inclusion proof (leaf to root). */
export function batchTree(leaves: readonly Uint8Array[], hash: Sha256 = nobleSha256): { readonly root: Uint8Array; readonly paths: Uint8Array[][] } {
  if (leaves.length === 0) throw new RangeError('a receipt tree needs at least one leaf');
  const paths: Uint8Array[][] = leaves.map(() => []);
  const subtree = (lo: number, hi: number): Uint8Array => {
    if (hi - lo === 1) return leaves[lo] as Uint8Array;
    const k = largestPowerOfTwoBelow(hi - lo);
    const left = subtree(lo, lo + k);
    const right = subtree(lo + k, hi);
    for (let i = lo; i < lo + k; i++) paths[i]?.push(right);
    for (let i = lo + k; i < hi; i++) paths[i]?.push(left);
    return nodeHash(left, right, hash);
  };
  return { root: subtree(0, leaves.length), paths };
}

/**
 * The root that `path` leads to from `leafHash` at `index` in a tree of `size` leaves (RFC 9162
 * §2.1.3.2), or undefined if the path cannot belong to such a tree.
 */
export function rootFromPath(leafHash: Uint8Array, index: number, size: number, path: readonly Uint8Array[]): Uint8Array | undefined {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size || size > 2 ** 32 || path.length > MAX_BATCH_PATH) return undefined;
  let fn = index;
  let sn = size - 1;
  let r = leafHash;
  for (const p of path) {
    if (p.length !== 32 || sn === 0) return undefined;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 ? r : undefined;
}

function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}
