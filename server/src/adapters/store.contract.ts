// The `Store` contract as one vitest suite, registered against every implementation (abstract-level
// habit): records round trip as private copies, conditional changes are all-or-nothing, a nonce is
// consumed exactly once even under concurrency, listing is per owner and paginates in key-id order,
// and pruning drops only expired nonces. Implementation-specific tests live beside each adapter.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isOpenKeyError, type ErrorCode } from '../core/errors.ts';
import type { Change, KeyRecord, PrincipalRecord, Store } from '../core/ports.ts';

export function principal(id: string, over: Partial<PrincipalRecord> = {}): PrincipalRecord {
  return { id, role: 'service', algorithm: 'ed25519', publicKey: new Uint8Array(32).fill(9), name: `name of ${id}`, createdAt: 1_700_000_000_000, ...over };
}

export function keyRecord(keyId: string, owner: string, over: Partial<KeyRecord> = {}): KeyRecord {
  return {
    keyId,
    owner,
    algorithm: 'secp256k1',
    publicKey: Uint8Array.from({ length: 33 }, (_, i) => (i === 0 ? 2 : i)),
    label: `label ${keyId}`,
    rawDigestSigning: false,
    createdAt: 1_700_000_000_001,
    sealed: Uint8Array.from({ length: 67 }, (_, i) => (i * 7) & 0xff),
    ...over,
  };
}

export const nonce = (principalId: string, n: string, expiresAt = 2_000): Change => ({ kind: 'consumeNonce', principalId, nonce: n, expiresAt });

/** The OpenKeyError code a promise rejects with; fails the test on success or a foreign error. */
export async function codeOf(p: Promise<unknown>): Promise<ErrorCode> {
  try {
    await p;
  } catch (e) {
    if (isOpenKeyError(e)) return e.code;
    throw e;
  }
  throw new Error('expected a rejection');
}

/** Registers the contract tests; `openStore` must return a fresh, empty store on every call. */
export function storeContract(name: string, openStore: () => Promise<Store>): void {
  describe(`Store contract: ${name}`, () => {
    let store: Store;
    beforeEach(async () => {
      store = await openStore();
    });
    afterEach(async () => {
      await store.close();
    });

    describe('records', () => {
      it('creates and reads principals and keys; unknown ids are undefined', async () => {
        const p = principal('svc_a', { algorithm: 'p256', publicKey: new Uint8Array(33).fill(3), role: 'admin' });
        const k = keyRecord('key_1', 'svc_a', { algorithm: 'ed25519', publicKey: new Uint8Array(32).fill(4), rawDigestSigning: true });
        await store.commit([
          { kind: 'createPrincipal', principal: p },
          { kind: 'createKey', key: k },
        ]);
        expect(await store.getPrincipal('svc_a')).toEqual(p);
        expect(await store.getKey('key_1')).toEqual(k);
        expect(await store.listKeys('svc_a', { limit: 10 })).toEqual([k]);
        expect(await store.getPrincipal('svc_b')).toBeUndefined();
        expect(await store.getKey('key_2')).toBeUndefined();
        // Principal and key id spaces are separate.
        expect(await store.getKey('svc_a')).toBeUndefined();
        expect(await store.getPrincipal('key_1')).toBeUndefined();
      });

      it('keeps non-ASCII ids and text exactly', async () => {
        const p = principal('svc_ünïcødé_😀', { name: 'naïve \u2028 "quoted" \\ \ud800 lone' });
        const k = keyRecord('clé_😀', p.id, { label: '' });
        await store.commit([
          { kind: 'createPrincipal', principal: p },
          { kind: 'createKey', key: k },
        ]);
        expect(await store.getPrincipal(p.id)).toEqual(p);
        expect(await store.getKey(k.keyId)).toEqual(k);
        expect(await store.listKeys(p.id, { limit: 5 })).toEqual([k]);
      });

      it('returns private copies: mutating a returned record or the committed input changes nothing', async () => {
        const p = principal('svc_a');
        const k = keyRecord('key_1', 'svc_a');
        const expectedP = principal('svc_a');
        const expectedK = keyRecord('key_1', 'svc_a');
        const pending = store.commit([
          { kind: 'createPrincipal', principal: p },
          { kind: 'createKey', key: k },
        ]);
        // Mutating the input even before the commit settles does not reach the store.
        p.publicKey.fill(0);
        k.sealed.fill(0);
        k.publicKey.fill(0);
        await pending;
        const gotK = await store.getKey('key_1');
        const gotP = await store.getPrincipal('svc_a');
        expect(gotK).toEqual(expectedK);
        expect(gotP).toEqual(expectedP);
        gotK?.sealed.fill(1);
        gotK?.publicKey.fill(1);
        gotP?.publicKey.fill(1);
        const listed = await store.listKeys('svc_a', { limit: 1 });
        listed[0]?.sealed.fill(2);
        expect(await store.getKey('key_1')).toEqual(expectedK);
        expect(await store.getPrincipal('svc_a')).toEqual(expectedP);
        expect(await store.listKeys('svc_a', { limit: 1 })).toEqual([expectedK]);
      });

      it('replaceKey swaps the record (same owner), visible to get and list', async () => {
        await store.commit([{ kind: 'createKey', key: keyRecord('key_1', 'svc_a') }]);
        const next = keyRecord('key_1', 'svc_a', { label: 'rewrapped', sealed: new Uint8Array(67).fill(5) });
        await store.commit([{ kind: 'replaceKey', key: next }]);
        expect(await store.getKey('key_1')).toEqual(next);
        expect(await store.listKeys('svc_a', { limit: 10 })).toEqual([next]);
      });

      it('replaceKey of a missing key or to another owner is INTERNAL and writes nothing', async () => {
        await store.commit([{ kind: 'createKey', key: keyRecord('key_1', 'svc_a') }]);
        expect(await codeOf(store.commit([nonce('svc_a', 'n1'), { kind: 'replaceKey', key: keyRecord('key_9', 'svc_a') }]))).toBe('INTERNAL');
        expect(await codeOf(store.commit([nonce('svc_a', 'n1'), { kind: 'replaceKey', key: keyRecord('key_1', 'svc_b') }]))).toBe('INTERNAL');
        expect(await store.getKey('key_9')).toBeUndefined();
        expect(await store.getKey('key_1')).toEqual(keyRecord('key_1', 'svc_a'));
        expect(await store.listKeys('svc_b', { limit: 10 })).toEqual([]);
        await store.commit([nonce('svc_a', 'n1')]); // n1 was not consumed by the failed commits
      });

      it('a change sees earlier changes of the same commit', async () => {
        const next = keyRecord('key_1', 'svc_a', { label: 'second' });
        await store.commit([
          { kind: 'createKey', key: keyRecord('key_1', 'svc_a') },
          { kind: 'replaceKey', key: next },
        ]);
        expect(await store.getKey('key_1')).toEqual(next);
      });

      it('refuses invalid records with INTERNAL before writing anything', async () => {
        const bad: [string, Change][] = [
          ['role', { kind: 'createPrincipal', principal: { ...principal('p1'), role: 'root' } as unknown as PrincipalRecord }],
          ['ed25519 key length', { kind: 'createPrincipal', principal: principal('p1', { publicKey: new Uint8Array(33) }) }],
          ['p256 prefix', { kind: 'createPrincipal', principal: principal('p1', { algorithm: 'p256', publicKey: new Uint8Array(33).fill(5) }) }],
          ['empty id', { kind: 'createPrincipal', principal: principal('') }],
          ['lone surrogate id', { kind: 'createKey', key: keyRecord('key_\ud800', 'svc_a') }],
          ['empty sealed', { kind: 'createKey', key: keyRecord('key_1', 'svc_a', { sealed: new Uint8Array(0) }) }],
          ['createdAt', { kind: 'createKey', key: keyRecord('key_1', 'svc_a', { createdAt: -1 }) }],
          ['raw flag', { kind: 'createKey', key: { ...keyRecord('key_1', 'svc_a'), rawDigestSigning: 'yes' } as unknown as KeyRecord }],
          ['sealed type', { kind: 'createKey', key: { ...keyRecord('key_1', 'svc_a'), sealed: [1, 2, 3] } as unknown as KeyRecord }],
          ['nonce expiry', nonce('svc_a', 'n2', Number.NaN)],
          ['empty nonce', nonce('svc_a', '')],
          ['unknown kind', { kind: 'dropTable' } as unknown as Change],
        ];
        for (const [label, change] of bad) {
          expect(await codeOf(store.commit([nonce('svc_a', 'n1'), change])), label).toBe('INTERNAL');
        }
        expect(await store.getPrincipal('p1')).toBeUndefined();
        expect(await store.getKey('key_1')).toBeUndefined();
        await store.commit([nonce('svc_a', 'n1')]);
      });

      it('an empty commit is a no-op; ill-formed ids read as absent', async () => {
        await store.commit([]);
        expect(await store.getKey('\udc00')).toBeUndefined();
        expect(await store.getPrincipal('')).toBeUndefined();
        expect(await store.listKeys('', { limit: 1 })).toEqual([]);
      });
    });

    describe('atomic commits', () => {
      it('a duplicate principal fails with PRINCIPAL_EXISTS and no other change of the commit lands', async () => {
        await store.commit([{ kind: 'createPrincipal', principal: principal('svc_a') }]);
        const code = await codeOf(
          store.commit([
            { kind: 'createPrincipal', principal: principal('svc_b') },
            { kind: 'createKey', key: keyRecord('key_1', 'svc_b') },
            nonce('svc_b', 'n1'),
            { kind: 'createPrincipal', principal: principal('svc_a', { name: 'overwritten?' }) },
          ]),
        );
        expect(code).toBe('PRINCIPAL_EXISTS');
        expect(await store.getPrincipal('svc_a')).toEqual(principal('svc_a'));
        expect(await store.getPrincipal('svc_b')).toBeUndefined();
        expect(await store.getKey('key_1')).toBeUndefined();
        expect(await store.listKeys('svc_b', { limit: 10 })).toEqual([]);
        await store.commit([nonce('svc_b', 'n1')]); // still unconsumed
      });

      it('a key-id collision fails with INTERNAL and no other change of the commit lands', async () => {
        const original = keyRecord('key_1', 'svc_a');
        await store.commit([{ kind: 'createKey', key: original }]);
        const code = await codeOf(
          store.commit([
            { kind: 'createPrincipal', principal: principal('svc_b') },
            nonce('svc_b', 'n1'),
            { kind: 'createKey', key: keyRecord('key_2', 'svc_b') },
            { kind: 'createKey', key: keyRecord('key_1', 'svc_b', { label: 'hijack' }) },
          ]),
        );
        expect(code).toBe('INTERNAL');
        expect(await store.getKey('key_1')).toEqual(original);
        expect(await store.getKey('key_2')).toBeUndefined();
        expect(await store.getPrincipal('svc_b')).toBeUndefined();
        expect(await store.listKeys('svc_b', { limit: 10 })).toEqual([]);
        await store.commit([nonce('svc_b', 'n1')]);
      });

      it('a replayed nonce fails with STAMP_REPLAYED and no other change of the commit lands', async () => {
        await store.commit([nonce('svc_a', 'n1')]);
        const code = await codeOf(store.commit([{ kind: 'createKey', key: keyRecord('key_1', 'svc_a') }, nonce('svc_a', 'n1')]));
        expect(code).toBe('STAMP_REPLAYED');
        expect(await store.getKey('key_1')).toBeUndefined();
        expect(await store.listKeys('svc_a', { limit: 10 })).toEqual([]);
      });

      it('duplicates inside one commit are caught too', async () => {
        expect(
          await codeOf(
            store.commit([
              { kind: 'createPrincipal', principal: principal('svc_a') },
              { kind: 'createPrincipal', principal: principal('svc_a') },
            ]),
          ),
        ).toBe('PRINCIPAL_EXISTS');
        expect(
          await codeOf(
            store.commit([
              { kind: 'createKey', key: keyRecord('key_1', 'svc_a') },
              { kind: 'createKey', key: keyRecord('key_1', 'svc_a') },
            ]),
          ),
        ).toBe('INTERNAL');
        expect(await codeOf(store.commit([nonce('svc_a', 'n1'), nonce('svc_a', 'n1')]))).toBe('STAMP_REPLAYED');
        expect(await store.getPrincipal('svc_a')).toBeUndefined();
        expect(await store.getKey('key_1')).toBeUndefined();
        await store.commit([nonce('svc_a', 'n1')]);
      });

      it('concurrent creations of the same principal: exactly one wins', async () => {
        const results = await Promise.allSettled(
          Array.from({ length: 20 }, (_, i) => store.commit([{ kind: 'createPrincipal', principal: principal('svc_a', { name: `writer ${i}` }) }])),
        );
        const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
        expect(won).toHaveLength(1);
        for (const r of results) if (r.status === 'rejected') expect(isOpenKeyError(r.reason) && r.reason.code).toBe('PRINCIPAL_EXISTS');
        expect((await store.getPrincipal('svc_a'))?.name).toBe(`writer ${won[0] ?? -1}`);
      });

      it('concurrent commits of different keys lose no update', async () => {
        const ids = Array.from({ length: 40 }, (_, i) => `key_${String(i).padStart(2, '0')}`);
        await Promise.all(ids.map((id) => store.commit([{ kind: 'createKey', key: keyRecord(id, 'svc_a') }])));
        const listed = await store.listKeys('svc_a', { limit: 100 });
        expect(listed.map((k) => k.keyId)).toEqual(ids);
      });
    });

    describe('nonces', () => {
      it('a nonce is consumed once per principal', async () => {
        await store.commit([nonce('svc_a', 'n1')]);
        expect(await codeOf(store.commit([nonce('svc_a', 'n1')]))).toBe('STAMP_REPLAYED');
        expect(await codeOf(store.commit([nonce('svc_a', 'n1', 999_999)]))).toBe('STAMP_REPLAYED');
        await store.commit([nonce('svc_b', 'n1')]); // another principal's nonce space
        await store.commit([nonce('svc_a', 'n2')]);
        // Separator safety: ('a!', 'b') and ('a', '!b') are different pairs.
        await store.commit([nonce('a!', 'b')]);
        await store.commit([nonce('a', '!b')]);
      });

      it('50 concurrent attempts to consume one nonce: exactly one succeeds', async () => {
        const results = await Promise.allSettled(Array.from({ length: 50 }, () => store.commit([nonce('svc_a', 'n-race')])));
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        const codes = results.flatMap((r) => (r.status === 'rejected' ? [isOpenKeyError(r.reason) ? r.reason.code : 'foreign error'] : []));
        expect(codes).toEqual(new Array(49).fill('STAMP_REPLAYED'));
      });

      it('pruneNonces drops only nonces that expired before now, then they can be used again', async () => {
        await store.commit([nonce('svc_a', 'n100', 100), nonce('svc_a', 'n200', 200), nonce('svc_b', 'n300', 300)]);
        expect(await store.pruneNonces(100)).toBe(0); // expiresAt == now is not before now
        expect(await store.pruneNonces(200)).toBe(1);
        await store.commit([nonce('svc_a', 'n100', 5_000)]); // pruned: usable again
        expect(await codeOf(store.commit([nonce('svc_a', 'n200')]))).toBe('STAMP_REPLAYED');
        expect(await store.pruneNonces(1_000)).toBe(2);
        expect(await store.pruneNonces(1_000)).toBe(0);
        expect(await codeOf(store.commit([nonce('svc_a', 'n100')]))).toBe('STAMP_REPLAYED'); // expires at 5000
        expect(await codeOf(store.pruneNonces(-1))).toBe('INTERNAL');
      });

      it('pruneNonces handles more nonces than one internal chunk', async () => {
        const changes = Array.from({ length: 1_200 }, (_, i) => nonce('svc_a', `n${i}`, i < 1_100 ? 10 + i : 1_000_000));
        for (let i = 0; i < changes.length; i += 400) await store.commit(changes.slice(i, i + 400));
        expect(await store.pruneNonces(10_000)).toBe(1_100);
        expect(await codeOf(store.commit([nonce('svc_a', 'n1150')]))).toBe('STAMP_REPLAYED');
        await store.commit([nonce('svc_a', 'n5')]);
      });
    });

    describe('listKeys', () => {
      it("returns only the owner's keys, even when owner ids are prefixes of each other", async () => {
        await store.commit([
          { kind: 'createKey', key: keyRecord('k_a1', 'a') },
          { kind: 'createKey', key: keyRecord('k_ab1', 'ab') },
          { kind: 'createKey', key: keyRecord('k_abang', 'a!b') },
          { kind: 'createKey', key: keyRecord('k_a2', 'a') },
        ]);
        expect((await store.listKeys('a', { limit: 10 })).map((k) => k.keyId)).toEqual(['k_a1', 'k_a2']);
        expect((await store.listKeys('ab', { limit: 10 })).map((k) => k.keyId)).toEqual(['k_ab1']);
        expect((await store.listKeys('a!b', { limit: 10 })).map((k) => k.keyId)).toEqual(['k_abang']);
        expect(await store.listKeys('nobody', { limit: 10 })).toEqual([]);
      });

      it('paginates in key-id order with an exclusive `after` cursor', async () => {
        const ids = ['k05', 'k01', 'k10', 'k03', 'k02', 'k07', 'k1', 'k04'];
        await store.commit([
          ...ids.map((id): Change => ({ kind: 'createKey', key: keyRecord(id, 'svc_a') })),
          { kind: 'createKey', key: keyRecord('k00', 'svc_b') },
          { kind: 'createKey', key: keyRecord('k99', 'svc_b') },
        ]);
        const sorted = [...ids].sort();
        const page = async (after?: string): Promise<string[]> =>
          (await store.listKeys('svc_a', after === undefined ? { limit: 3 } : { limit: 3, after })).map((k) => k.keyId);
        expect(await page()).toEqual(sorted.slice(0, 3));
        expect(await page('k03')).toEqual(['k04', 'k05', 'k07']);
        expect(await page('k07')).toEqual(['k1', 'k10']);
        expect(await page('k10')).toEqual([]);
        expect(await page('k035')).toEqual(['k04', 'k05', 'k07']); // cursor need not exist
        expect(await page('')).toEqual(sorted.slice(0, 3)); // '' sorts before every id: from the start
        // Walking the pages visits every key once.
        const seen: string[] = [];
        for (let after: string | undefined; ; ) {
          const got = await page(after);
          if (got.length === 0) break;
          seen.push(...got);
          after = got[got.length - 1];
        }
        expect(seen).toEqual(sorted);
      });

      it('rejects a page limit outside 1..1000 with INTERNAL', async () => {
        for (const limit of [0, -1, 1.5, 1001, Number.NaN]) expect(await codeOf(store.listKeys('svc_a', { limit })), String(limit)).toBe('INTERNAL');
      });
    });

    it('after close, calls fail with INTERNAL and close is idempotent', async () => {
      await store.commit([nonce('svc_a', 'n1')]);
      await store.close();
      expect(await codeOf(store.getKey('key_1'))).toBe('INTERNAL');
      expect(await codeOf(store.commit([nonce('svc_a', 'n2')]))).toBe('INTERNAL');
      await store.close();
    });
  });
}
