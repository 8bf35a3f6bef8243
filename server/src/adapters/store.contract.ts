// The `Store` contract as one vitest suite, registered against every implementation (abstract-level
// habit): records round trip as private copies, conditional changes are all-or-nothing, a nonce is
// consumed exactly once even under concurrency, listing is per owner and paginates in key-id order,
// pruning drops only expired nonces, window counters and token buckets never overspend under
// concurrency, audit appends chain without gaps or forks, and `commitEach` isolates its groups.
// Implementation-specific tests live beside each adapter.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AUDIT_GENESIS_HASH, auditRecordHash } from '../core/audit.ts';
import { isOpenKeyError, type ErrorCode } from '../core/errors.ts';
import { docVersion, keyRecordVersion } from '../core/read-versions.ts';
import type { AuditEntry, AuditRecord, Change, KeyRecord, PrincipalRecord, Store, TokenBucketParams } from '../core/ports.ts';

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

export const increment = (counter: string, windowStart: number, limit: number, by = 1): Change => ({ kind: 'incrementCounter', counter, windowStart, by, limit });

export const take = (bucket: string, now: number, p: TokenBucketParams, tokens = 1): Change => ({ kind: 'takeTokens', bucket, now, tokens, ...p });

export function auditEntry(n: number, over: Partial<AuditEntry> = {}): AuditEntry {
  return {
    time: 1_700_000_000_000 + n,
    principal: `svc_${n % 3}`,
    operation: 'personal_sign',
    keyId: 'key_1',
    requestDigest: new Uint8Array(32).fill(n & 0xff),
    decision: n % 5 === 0 ? 'deny' : 'allow',
    reason: n % 5 === 0 ? 'NOT_GRANTED' : 'GRANT',
    ...over,
  };
}

export const append = (entry: AuditEntry): Change => ({ kind: 'appendAudit', entry });

/** Fails the test unless `records` are 1..n, each hashing to its hash and linking to its predecessor. */
export function expectChain(records: readonly AuditRecord[], n: number): void {
  expect(records.map((r) => r.seq)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
  let prev = AUDIT_GENESIS_HASH;
  for (const r of records) {
    expect(r.prevHash, `prevHash of ${r.seq}`).toEqual(prev);
    expect(auditRecordHash(r), `hash of ${r.seq}`).toEqual(r.hash);
    prev = r.hash;
  }
}

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

    describe('window counters (incrementCounter)', () => {
      it('counts up to the limit; past it CAP_EXCEEDED and no other change of the commit lands', async () => {
        for (let i = 1; i <= 3; i++) await store.commit([increment('cap-a', 1_000, 3)]);
        expect(await store.getCounter('cap-a')).toEqual({ windowStart: 1_000, count: 3 });
        expect(await codeOf(store.commit([nonce('svc_a', 'n1'), increment('cap-a', 1_000, 3), append(auditEntry(1))]))).toBe('CAP_EXCEEDED');
        expect(await store.getCounter('cap-a')).toEqual({ windowStart: 1_000, count: 3 });
        expect((await store.getAuditHead()).seq).toBe(0);
        await store.commit([nonce('svc_a', 'n1')]); // not consumed by the failed commit
        expect(await store.getCounter('cap-b')).toBeUndefined();
      });

      it('increments in one commit add up, and all-or-nothing applies to them too', async () => {
        await store.commit([increment('c', 0, 5, 2), increment('c', 0, 5, 2)]);
        expect((await store.getCounter('c'))?.count).toBe(4);
        expect(await codeOf(store.commit([increment('c', 0, 5, 1), increment('c', 0, 5, 1)]))).toBe('CAP_EXCEEDED');
        expect((await store.getCounter('c'))?.count).toBe(4);
      });

      it('a newer window starts from zero; an older window counts against the stored newer one', async () => {
        await store.commit([increment('c', 1_000, 2), increment('c', 1_000, 2)]);
        expect(await codeOf(store.commit([increment('c', 1_000, 2)]))).toBe('CAP_EXCEEDED');
        await store.commit([increment('c', 2_000, 2)]);
        expect(await store.getCounter('c')).toEqual({ windowStart: 2_000, count: 1 });
        await store.commit([increment('c', 1_000, 2)]); // late request: charged to window 2000
        expect(await store.getCounter('c')).toEqual({ windowStart: 2_000, count: 2 });
        expect(await codeOf(store.commit([increment('c', 1_000, 2)]))).toBe('CAP_EXCEEDED');
      });

      it('50 concurrent increments against a limit of 20: exactly 20 succeed', async () => {
        const results = await Promise.allSettled(Array.from({ length: 50 }, () => store.commit([increment('race', 0, 20)])));
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(20);
        const codes = results.flatMap((r) => (r.status === 'rejected' ? [isOpenKeyError(r.reason) ? r.reason.code : 'foreign error'] : []));
        expect(codes).toEqual(new Array(30).fill('CAP_EXCEEDED'));
        expect(await store.getCounter('race')).toEqual({ windowStart: 0, count: 20 });
      });

      it('refuses ill-formed increments with INTERNAL', async () => {
        for (const c of [increment('', 0, 1), increment('c', -1, 1), increment('c', 0, 1, 0), increment('c', 0, 1, 1.5), increment('c', 0, Number.NaN)]) {
          expect(await codeOf(store.commit([c]))).toBe('INTERNAL');
        }
        expect(await store.getCounter('c')).toBeUndefined();
      });
    });

    describe('token buckets (takeTokens)', () => {
      const p: TokenBucketParams = { capacity: 3, refillTokens: 1, refillPeriodMs: 1_000 }; // 3 burst, 1/s

      it('a new bucket starts full; empty ⇒ RATE_LIMITED; refills with time, never above capacity', async () => {
        for (let i = 0; i < 3; i++) await store.commit([take('b', 10_000, p)]);
        expect(await codeOf(store.commit([nonce('svc_a', 'n1'), take('b', 10_000, p)]))).toBe('RATE_LIMITED');
        await store.commit([nonce('svc_a', 'n1')]); // the failed commit wrote nothing
        expect(await codeOf(store.commit([take('b', 10_999, p)]))).toBe('RATE_LIMITED');
        await store.commit([take('b', 11_000, p)]);
        expect(await codeOf(store.commit([take('b', 11_000, p)]))).toBe('RATE_LIMITED');
        await store.commit([take('b', 1_000_000, p, 3)]); // long idle: full, not more
        expect(await codeOf(store.commit([take('b', 1_000_000, p)]))).toBe('RATE_LIMITED');
        expect(await store.getTokenBucket('b')).toEqual({ level: 0, at: 1_000_000, ...p });
      });

      it('a clock behind the stored time refills nothing; a request larger than the bucket never passes', async () => {
        await store.commit([take('b', 50_000, p, 3)]);
        expect(await codeOf(store.commit([take('b', 10_000, p)]))).toBe('RATE_LIMITED');
        expect((await store.getTokenBucket('b'))?.at).toBe(50_000);
        expect(await codeOf(store.commit([take('c', 0, p, 4)]))).toBe('RATE_LIMITED');
      });

      it('changed parameters start a full bucket; fractional refill rates are exact', async () => {
        await store.commit([take('b', 0, p, 3)]);
        const q: TokenBucketParams = { capacity: 10, refillTokens: 3, refillPeriodMs: 1_000 }; // 3 per second
        await store.commit([take('b', 0, q, 10)]);
        expect(await codeOf(store.commit([take('b', 333, q)]))).toBe('RATE_LIMITED'); // 0.999 tokens
        await store.commit([take('b', 334, q)]); // 1.002 tokens
        expect(await store.getTokenBucket('b')).toEqual({ level: 2, at: 334, ...q });
      });

      it('50 concurrent takes at one instant from a bucket of 10: exactly 10 succeed', async () => {
        const q: TokenBucketParams = { capacity: 10, refillTokens: 1, refillPeriodMs: 60_000 };
        const results = await Promise.allSettled(Array.from({ length: 50 }, () => store.commit([take('race', 5_000, q)])));
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(10);
        for (const r of results) if (r.status === 'rejected') expect(isOpenKeyError(r.reason) && r.reason.code).toBe('RATE_LIMITED');
      });

      it('refuses ill-formed takes with INTERNAL', async () => {
        const bad: Change[] = [
          take('', 0, p),
          take('b', -5, p),
          take('b', 0, p, 0),
          take('b', 0, { ...p, capacity: 0 }),
          take('b', 0, { ...p, refillPeriodMs: 0.5 }),
          take('b', 0, { capacity: 2 ** 30, refillTokens: 1, refillPeriodMs: 2 ** 30 }),
        ];
        for (const c of bad) expect(await codeOf(store.commit([c]))).toBe('INTERNAL');
        expect(await store.getTokenBucket('b')).toBeUndefined();
      });
    });

    describe('audit chain (appendAudit)', () => {
      it('an empty log has head {0, zeros}; appends chain 1, 2, 3… and the head follows', async () => {
        expect(await store.getAuditHead()).toEqual({ seq: 0, hash: AUDIT_GENESIS_HASH });
        expect(await store.readAudit(1, 10)).toEqual([]);
        await store.commit([append(auditEntry(1))]);
        await store.commit([nonce('svc_a', 'n1'), append(auditEntry(2)), append(auditEntry(3))]); // two in one commit chain too
        const records = await store.readAudit(1, 3);
        expectChain(records, 3);
        expect(records[1]).toMatchObject({ ...auditEntry(2), seq: 2 });
        expect(await store.getAuditHead()).toEqual({ seq: 3, hash: records[2]?.hash });
        expect((await store.readAudit(2, 2)).map((r) => r.seq)).toEqual([2]);
        expect(await store.readAudit(4, 3)).toEqual([]);
      });

      it('a failed commit takes no sequence number', async () => {
        await store.commit([nonce('svc_a', 'n1'), append(auditEntry(1))]);
        expect(await codeOf(store.commit([append(auditEntry(2)), nonce('svc_a', 'n1')]))).toBe('STAMP_REPLAYED');
        await store.commit([append(auditEntry(3))]);
        const records = await store.readAudit(1, 10);
        expectChain(records, 2);
        expect(records[1]?.time).toBe(auditEntry(3).time);
      });

      it('100 concurrent appends form one chain without gaps or forks', async () => {
        await Promise.all(Array.from({ length: 100 }, (_, i) => store.commit([append(auditEntry(i))])));
        expectChain(await store.readAudit(1, 100), 100);
      });

      it('keeps text fields and an empty digest exactly; refuses ill-formed entries with INTERNAL', async () => {
        const odd = auditEntry(7, { principal: '', keyId: 'clé_😀', requestDigest: new Uint8Array(0), operation: 'login', reason: 'STAMP_INVALID' });
        await store.commit([append(odd)]);
        expect(await store.readAudit(1, 1)).toMatchObject([{ ...odd, seq: 1 }]);
        const bad: Partial<AuditEntry>[] = [
          { time: -1 },
          { principal: '\ud800' },
          { operation: 'Sign' },
          { keyId: 'k'.repeat(513) },
          { requestDigest: new Uint8Array(31) },
          { decision: 'maybe' as AuditEntry['decision'] },
          { reason: 'lower' },
        ];
        for (const over of bad) expect(await codeOf(store.commit([nonce('svc_a', 'x'), append(auditEntry(8, over))])), JSON.stringify(Object.keys(over))).toBe('INTERNAL');
        expect((await store.getAuditHead()).seq).toBe(1);
      });

      it('readAudit refuses ranges that are inverted, start below 1 or exceed 1000 records', async () => {
        for (const [from, to] of [[0, 5], [5, 3], [1, 1001], [1.5, 2]] as const) expect(await codeOf(store.readAudit(from, to)), `${from}..${to}`).toBe('INTERNAL');
      });
    });

    describe('commitEach (group commit)', () => {
      it('groups succeed or fail on their own, see earlier groups, and share one chain', async () => {
        await store.commit([nonce('svc_a', 'used')]);
        const results = await store.commitEach([
          [nonce('svc_a', 'g1'), increment('c', 0, 2), append(auditEntry(1))],
          [nonce('svc_a', 'used'), increment('c', 0, 2), append(auditEntry(2))], // replay: this group only
          [nonce('svc_a', 'g3'), increment('c', 0, 2), append(auditEntry(3))],
          [nonce('svc_a', 'g4'), increment('c', 0, 2), append(auditEntry(4))], // cap reached by groups 1 and 3
          [{ kind: 'dropTable' } as unknown as Change],
          [nonce('svc_a', 'g1')], // sees group 1's nonce
          [],
        ]);
        expect(results.map((e) => e?.code)).toEqual([undefined, 'STAMP_REPLAYED', undefined, 'CAP_EXCEEDED', 'INTERNAL', 'STAMP_REPLAYED', undefined]);
        expect((await store.getCounter('c'))?.count).toBe(2);
        const records = await store.readAudit(1, 10);
        expectChain(records, 2);
        expect(records.map((r) => r.time)).toEqual([auditEntry(1).time, auditEntry(3).time]);
        await store.commit([nonce('svc_a', 'g4')]); // the failed group consumed nothing
        expect(await codeOf(store.commit([nonce('svc_a', 'g3')]))).toBe('STAMP_REPLAYED');
      });

      it('a group that fails after appending leaves no trace in the chain; appends within a group chain', async () => {
        await store.commit([nonce('svc_a', 'used')]);
        const results = await store.commitEach([
          [append(auditEntry(1)), append(auditEntry(2))],
          [append(auditEntry(3)), nonce('svc_a', 'used')], // its append is dropped with the group
          [append(auditEntry(4))],
        ]);
        expect(results.map((e) => e?.code)).toEqual([undefined, 'STAMP_REPLAYED', undefined]);
        await store.commit([append(auditEntry(5))]);
        const records = await store.readAudit(1, 10);
        expectChain(records, 4);
        expect(records.map((r) => r.time)).toEqual([1, 2, 4, 5].map((i) => auditEntry(i).time));
        expect((await store.getAuditHead()).seq).toBe(4);
      });

      it('concurrent group commits and single commits interleave into one chain', async () => {
        const groups = (k: number): Change[][] => Array.from({ length: 10 }, (_, i) => [append(auditEntry(k * 10 + i))]);
        await Promise.all([...[0, 1, 2].map((k) => store.commitEach(groups(k))), ...Array.from({ length: 20 }, (_, i) => store.commit([append(auditEntry(100 + i))]))]);
        expectChain(await store.readAudit(1, 100), 50);
      });
    });

    describe('documents (putDoc / deleteDoc)', () => {
      const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
      const text = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : new TextDecoder().decode(b));
      const put = (space: string, id: string, value: string, over: Partial<Extract<Change, { kind: 'putDoc' }>> = {}): Change => ({ kind: 'putDoc', space, id, value: bytes(value), ...over });

      it('versions start at 1 and grow; ifVersion 0 creates once; a stale version is CONFLICT or the given code', async () => {
        expect(await store.getDoc('policy', 'key_1')).toBeUndefined();
        await store.commit([put('policy', 'key_1', 'a', { ifVersion: 0 })]);
        const first = await store.getDoc('policy', 'key_1');
        expect([first?.version, text(first?.value)]).toEqual([1, 'a']);
        expect(await codeOf(store.commit([put('policy', 'key_1', 'b', { ifVersion: 0 })]))).toBe('CONFLICT');
        await store.commit([put('policy', 'key_1', 'b', { ifVersion: 1 })]);
        expect(await codeOf(store.commit([put('policy', 'key_1', 'c', { ifVersion: 1, conflict: 'PRINCIPAL_EXISTS' })]))).toBe('PRINCIPAL_EXISTS');
        await store.commit([put('policy', 'key_1', 'd')]);
        const last = await store.getDoc('policy', 'key_1');
        expect([last?.version, text(last?.value)]).toEqual([3, 'd']);
      });

      it('a failed condition writes nothing of the commit', async () => {
        await store.commit([put('policy', 'key_1', 'a')]);
        expect(await codeOf(store.commit([nonce('svc_a', 'n1'), put('policy', 'key_2', 'x'), put('policy', 'key_1', 'b', { ifVersion: 0 })]))).toBe('CONFLICT');
        expect(await store.getDoc('policy', 'key_2')).toBeUndefined();
        await store.commit([nonce('svc_a', 'n1')]); // the nonce was not consumed
      });

      it('deleteDoc with ifVersion consumes exactly once under concurrency', async () => {
        await store.commit([put('challenge', 'c1', 'x', { expiresAt: 5_000 })]);
        const results = await Promise.allSettled(Array.from({ length: 20 }, () => store.commit([{ kind: 'deleteDoc', space: 'challenge', id: 'c1', ifVersion: 1, conflict: 'WEBAUTHN_CHALLENGE_INVALID' }])));
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        for (const r of results) if (r.status === 'rejected') expect((r.reason as { code?: string }).code).toBe('WEBAUTHN_CHALLENGE_INVALID');
        expect(await store.getDoc('challenge', 'c1')).toBeUndefined();
        await store.commit([{ kind: 'deleteDoc', space: 'challenge', id: 'c1' }]); // unconditional: no error
      });

      it('20 concurrent compare-and-set writers from one version: exactly one wins', async () => {
        await store.commit([put('policy', 'k', '0')]);
        const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => store.commit([put('policy', 'k', String(i), { ifVersion: 1 })])));
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        expect((await store.getDoc('policy', 'k'))?.version).toBe(2);
      });

      it('listDocs pages in id order within a prefix and never crosses spaces', async () => {
        const ids = ['usr_b/3', 'usr_a/2', 'usr_a/1', 'usr_ab/9', 'usr_c/1'];
        await store.commit(ids.map((id) => put('passkey-index', id, id)));
        await store.commit([put('passkeys', 'usr_a/1', 'other space')]);
        const list = async (prefix: string | undefined, after?: string, limit = 10) =>
          (await store.listDocs('passkey-index', { limit, ...(prefix === undefined ? {} : { prefix }), ...(after === undefined ? {} : { after }) })).map((d) => d.id);
        expect(await list(undefined)).toEqual(['usr_a/1', 'usr_a/2', 'usr_ab/9', 'usr_b/3', 'usr_c/1']);
        expect(await list('usr_a/')).toEqual(['usr_a/1', 'usr_a/2']);
        expect(await list('usr_a/', 'usr_a/1')).toEqual(['usr_a/2']);
        expect(await list('usr_a', undefined, 2)).toEqual(['usr_a/1', 'usr_a/2']);
        expect(await list('usr_a', 'usr_a/2')).toEqual(['usr_ab/9']);
        expect(await list('usr_z/')).toEqual([]);
        const [doc] = await store.listDocs('passkeys', { limit: 10 });
        expect(text(doc?.doc.value)).toBe('other space');
      });

      it('pruneDocs removes only documents past their current expiry', async () => {
        await store.commit([put('challenge', 'old', 'x', { expiresAt: 100 }), put('challenge', 'new', 'y', { expiresAt: 10_000 }), put('challenge', 'moved', 'z', { expiresAt: 100 }), put('policy', 'forever', 'p')]);
        await store.commit([put('challenge', 'moved', 'z2', { expiresAt: 20_000 })]);
        expect(await store.pruneDocs(1_000)).toBe(1);
        expect(await store.getDoc('challenge', 'old')).toBeUndefined();
        expect(text((await store.getDoc('challenge', 'moved'))?.value)).toBe('z2');
        expect(await store.getDoc('challenge', 'new')).toBeDefined();
        expect(await store.getDoc('policy', 'forever')).toBeDefined();
        expect(await store.pruneDocs(1_000)).toBe(0);
      });

      it('refuses ill-formed spaces, ids and versions with INTERNAL', async () => {
        for (const change of [put('Bad Space', 'x', 'v'), put('ok', '', 'v'), put('ok', 'x', 'v', { ifVersion: -1 }), put('ok', 'x', 'v', { expiresAt: 1.5 }), { kind: 'deleteDoc', space: 'ok', id: 'x', ifVersion: 0 } as Change]) {
          expect(await codeOf(store.commit([change]))).toBe('INTERNAL');
        }
        expect(await codeOf(store.commit([{ kind: 'putDoc', space: 'ok', id: 'x', value: new Uint8Array(256 * 1024 + 1) }]))).toBe('INTERNAL');
      });
    });

    describe('read conditions (expectKey / expectDoc)', () => {
      const bytes = (v: string): Uint8Array => new TextEncoder().encode(v);
      const doc = (id: string, value: string): Change => ({ kind: 'putDoc', space: 'policy', id, value: bytes(value) });
      const expectKey = (keyId: string, record: KeyRecord | undefined): Change => ({ kind: 'expectKey', keyId, version: keyRecordVersion(record) });
      const expectDoc = async (id: string): Promise<Change> => ({ kind: 'expectDoc', space: 'policy', id, version: docVersion(await store.getDoc('policy', id)) });

      it('a key record as read lets the commit land; a replaced, created or unknown one is CONFLICT and writes nothing', async () => {
        const first = keyRecord('key_1', 'svc_a');
        await store.commit([{ kind: 'createKey', key: first }]);
        await store.commit([expectKey('key_1', first), expectKey('key_2', undefined), nonce('svc_a', 'n1')]);
        expect(await codeOf(store.commit([nonce('svc_a', 'n2'), expectKey('key_1', { ...first, label: 'other' })]))).toBe('CONFLICT');
        expect(await codeOf(store.commit([nonce('svc_a', 'n2'), expectKey('key_1', undefined)]))).toBe('CONFLICT');
        expect(await codeOf(store.commit([nonce('svc_a', 'n2'), expectKey('key_2', first)]))).toBe('CONFLICT');
        await store.commit([{ kind: 'replaceKey', key: { ...first, sealed: new Uint8Array(67).fill(1) } }]);
        expect(await codeOf(store.commit([nonce('svc_a', 'n2'), expectKey('key_1', first)]))).toBe('CONFLICT');
        await store.commit([{ kind: 'createKey', key: keyRecord('key_2', 'svc_a') }]);
        expect(await codeOf(store.commit([nonce('svc_a', 'n2'), expectKey('key_2', undefined)]))).toBe('CONFLICT');
        await store.commit([nonce('svc_a', 'n2')]); // no failed commit consumed it
      });

      it('a document as read lets the commit land; any later write is CONFLICT; the version follows content, not the counter', async () => {
        const absent = await expectDoc('key_1');
        await store.commit([absent, nonce('svc_a', 'n1')]);
        await store.commit([doc('key_1', 'grants: g')]);
        expect(await codeOf(store.commit([nonce('svc_a', 'n2'), absent]))).toBe('CONFLICT');
        const withGrant = await expectDoc('key_1');
        await store.commit([withGrant]);
        await store.commit([doc('key_1', 'grants: none')]);
        expect(await codeOf(store.commit([nonce('svc_a', 'n2'), withGrant]))).toBe('CONFLICT');
        // Deleted and written again with the content that was read: the decision would be the same.
        await store.commit([{ kind: 'deleteDoc', space: 'policy', id: 'key_1' }, doc('key_1', 'grants: g')]);
        await store.commit([withGrant, nonce('svc_a', 'n2')]);
      });

      it('sees the writes of earlier changes in the same commit', async () => {
        const absent = await expectDoc('key_1');
        expect(await codeOf(store.commit([doc('key_1', 'x'), absent]))).toBe('CONFLICT');
        expect(await store.getDoc('policy', 'key_1')).toBeUndefined();
      });

      it('refuses ill-formed conditions, and service-session changes, with INTERNAL', async () => {
        for (const change of [
          { kind: 'expectKey', keyId: '', version: new Uint8Array(0) },
          { kind: 'expectKey', keyId: 'key_1', version: new Uint8Array(31) },
          { kind: 'expectDoc', space: 'Bad Space', id: 'x', version: new Uint8Array(0) },
          { kind: 'expectDoc', space: 'policy', id: 'x', version: 'v' },
          { kind: 'serviceSession', sessionId: `ses_${'0'.repeat(32)}`, seq: 1 },
        ] as Change[]) {
          expect(await codeOf(store.commit([nonce('svc_a', 'n1'), change]))).toBe('INTERNAL');
        }
        await store.commit([nonce('svc_a', 'n1')]);
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
