// Receipts signed together (proto/protocol/receipt.ts): the tree and its inclusion proofs follow
// RFC 9162 §2.1. Checked against a direct transcription of the RFC's recursive definitions (MTH and
// PATH), for every index of trees of 1 to 40 leaves, and against tampering.

import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MAX_BATCH_PATH, batchSigningInput, batchTree, receiptLeafHash, rootFromPath } from '../proto/protocol/receipt.ts';
import { sha256 } from '../server/src/core/crypto/sha256.ts';

const h = (...parts: Uint8Array[]): Uint8Array => {
  const c = createHash('sha256');
  for (const p of parts) c.update(p);
  return new Uint8Array(c.digest());
};
const k = (n: number): number => 2 ** Math.floor(Math.log2(n - 1)); // largest power of two < n (n > 1)

/** MTH(D[n]) over raw entries, as the RFC defines it. */
function mth(d: readonly Uint8Array[]): Uint8Array {
  if (d.length === 1) return h(Uint8Array.of(0), d[0] as Uint8Array);
  const s = k(d.length);
  return h(Uint8Array.of(1), mth(d.slice(0, s)), mth(d.slice(s)));
}

/** PATH(m, D[n]), as the RFC defines it. */
function path(m: number, d: readonly Uint8Array[]): Uint8Array[] {
  if (d.length === 1) return [];
  const s = k(d.length);
  return m < s ? [...path(m, d.slice(0, s)), mth(d.slice(s))] : [...path(m - s, d.slice(s)), mth(d.slice(0, s))];
}

describe('receipt tree (RFC 9162)', () => {
  it('computes the RFC root and proofs for every index of trees of 1 to 40 leaves, and the proofs verify', () => {
    // With the default hash (noble, what clients verify with) and with the appliance's own
    // (crypto/sha256.ts, passed in as receipts.ts does); proofs are checked with the default either way.
    for (const hash of [undefined, sha256]) for (let n = 1; n <= 40; n++) {
      const entries = Array.from({ length: n }, () => randomBytes(40 + (n % 7)));
      const leaves = entries.map((e) => receiptLeafHash(e, hash));
      const { root, paths } = batchTree(leaves, hash);
      expect(Buffer.from(root).equals(Buffer.from(mth(entries)))).toBe(true);
      for (let m = 0; m < n; m++) {
        expect(paths[m]?.map((p) => Buffer.from(p).toString('hex'))).toEqual(path(m, entries).map((p) => Buffer.from(p).toString('hex')));
        expect(Buffer.from(rootFromPath(receiptLeafHash(entries[m] as Uint8Array), m, n, paths[m] ?? []) ?? []).equals(Buffer.from(root))).toBe(true);
      }
    }
  });

  it('a proof leads elsewhere, or nowhere, once its leaf, index or path is changed', () => {
    const entries = Array.from({ length: 13 }, () => randomBytes(64));
    const leaves = entries.map((e) => receiptLeafHash(e));
    const { root, paths } = batchTree(leaves);
    const same = (r: Uint8Array | undefined) => r !== undefined && Buffer.from(r).equals(Buffer.from(root));
    for (let m = 0; m < 13; m++) {
      const p = paths[m] as Uint8Array[];
      const leaf = leaves[m] as Uint8Array;
      expect(same(rootFromPath(leaves[(m + 1) % 13] as Uint8Array, m, 13, p))).toBe(false);
      expect(same(rootFromPath(leaf, (m + 1) % 13, 13, p))).toBe(false);
      expect(same(rootFromPath(leaf, m, 13, p.slice(1)))).toBe(false);
      expect(same(rootFromPath(leaf, m, 13, [...p, randomBytes(32)]))).toBe(false);
      for (let j = 0; j < p.length; j++) {
        const flipped = p.map((x, i) => (i === j ? Uint8Array.from(x).fill(x[0] === 0 ? 1 : 0, 0, 1) : x));
        expect(same(rootFromPath(leaf, m, 13, flipped))).toBe(false);
      }
    }
  });

  it('binds the size in what is signed: a proof can fit a larger tree with the same root', () => {
    // For a leaf of the left, complete subtree, the same proof leads to the same root in a tree of
    // 13 and of 14 leaves; the size is therefore part of the batch signing input.
    const leaves = Array.from({ length: 13 }, () => receiptLeafHash(randomBytes(8)));
    const { root, paths } = batchTree(leaves);
    expect(rootFromPath(leaves[0] as Uint8Array, 0, 14, paths[0] ?? [])).toEqual(root);
    expect(Buffer.from(batchSigningInput(root, 13)).equals(Buffer.from(batchSigningInput(root, 14)))).toBe(false);
  });

  it('refuses ill-formed proofs outright', () => {
    const leaf = receiptLeafHash(randomBytes(10));
    expect(rootFromPath(leaf, 0, 1, [])).toEqual(leaf); // a tree of one leaf: the leaf is the root
    expect(rootFromPath(leaf, 1, 1, [])).toBeUndefined();
    expect(rootFromPath(leaf, -1, 4, [])).toBeUndefined();
    expect(rootFromPath(leaf, 0, 0, [])).toBeUndefined();
    expect(rootFromPath(leaf, 0, 2, [randomBytes(31)])).toBeUndefined();
    expect(rootFromPath(leaf, 0, 1, [randomBytes(32)])).toBeUndefined(); // a path longer than the tree
    expect(rootFromPath(leaf, 0, 2 ** 33, [])).toBeUndefined();
    expect(rootFromPath(leaf, 0, 2, Array.from({ length: MAX_BATCH_PATH + 1 }, () => randomBytes(32)))).toBeUndefined();
    expect(() => batchTree([])).toThrow(RangeError);
  });
});
