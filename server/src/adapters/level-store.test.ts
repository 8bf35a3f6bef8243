// The shared Store contract on LevelDB, plus what only a real disk store can show: data survives
// close/reopen, records tampered on disk (by a host with a raw handle) end in clean error codes with
// the process still serving, and a directory held by another open store cannot be opened twice.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isOpenKeyError } from '../core/errors.ts';
import type { Store } from '../core/ports.ts';
import { openLevelStore } from './level-store.ts';
import { append, auditEntry, codeOf, expectChain, increment, keyRecord, nonce, principal, storeContract, take } from './store.contract.ts';

const root = await mkdtemp(join(tmpdir(), 'openkey-level-'));
let dirs = 0;
const freshDir = (): string => join(root, `db${++dirs}`);
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

storeContract('level', () => openLevelStore(freshDir()));

/** Raw access to the database files, as the host has it. Only while no store holds the directory. */
async function withRaw(dir: string, fn: (db: Level<string, Uint8Array>) => Promise<void>): Promise<void> {
  const db = new Level<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view' });
  await db.open();
  try {
    await fn(db);
  } finally {
    await db.close();
  }
}
const rawKeys = async (db: Level<string, Uint8Array>, prefix: string): Promise<string[]> =>
  db.keys({ gte: prefix, lt: `${prefix.slice(0, -1)}"` }).all();
const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'utf8'));

describe('LevelDB store', () => {
  let dir: string;
  let store: Store | undefined;
  beforeEach(() => {
    dir = freshDir();
  });
  afterEach(async () => {
    await store?.close();
    store = undefined;
  });

  it('keeps principals, keys and consumed nonces across close and reopen', async () => {
    const s1 = await openLevelStore(dir);
    const k1 = keyRecord('key_1', 'svc_a');
    const k2 = keyRecord('key_2', 'svc_a', { algorithm: 'ed25519', publicKey: new Uint8Array(32).fill(1) });
    await s1.commit([{ kind: 'createPrincipal', principal: principal('svc_a') }, { kind: 'createKey', key: k1 }, { kind: 'createKey', key: k2 }, nonce('svc_a', 'n1')]);
    await s1.close();
    store = await openLevelStore(dir);
    expect(await store.getPrincipal('svc_a')).toEqual(principal('svc_a'));
    expect(await store.getKey('key_2')).toEqual(k2);
    expect(await store.listKeys('svc_a', { limit: 10 })).toEqual([k1, k2]);
    expect(await codeOf(store.commit([nonce('svc_a', 'n1')]))).toBe('STAMP_REPLAYED');
  });

  it('keeps counters, token buckets and the audit chain across close and reopen', async () => {
    const p = { capacity: 2, refillTokens: 1, refillPeriodMs: 60_000 };
    const s1 = await openLevelStore(dir);
    await s1.commit([increment('cap', 0, 3), increment('cap', 0, 3), take('rate', 100, p, 2), append(auditEntry(1)), append(auditEntry(2))]);
    await s1.close();
    store = await openLevelStore(dir);
    expect(await store.getCounter('cap')).toEqual({ windowStart: 0, count: 2 });
    await store.commit([increment('cap', 0, 3)]);
    expect(await codeOf(store.commit([increment('cap', 0, 3)]))).toBe('CAP_EXCEEDED');
    expect(await codeOf(store.commit([take('rate', 200, p)]))).toBe('RATE_LIMITED');
    await store.commit([append(auditEntry(3))]);
    expectChain(await store.readAudit(1, 10), 3);
  });

  it('opening a directory held by another open store fails cleanly; it opens once released', async () => {
    const first = await openLevelStore(dir);
    const err = await openLevelStore(dir).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isOpenKeyError(err) && err.code).toBe('INTERNAL');
    // The underlying cause is LevelDB's lock, kept for the operator's log.
    expect(isOpenKeyError(err) && Reflect.get(Reflect.get(err.cause as object, 'cause') as object, 'code')).toBe('LEVEL_LOCKED');
    await first.commit([nonce('svc_a', 'still-works')]);
    await first.close();
    store = await openLevelStore(dir);
    expect(await codeOf(store.commit([nonce('svc_a', 'still-works')]))).toBe('STAMP_REPLAYED');
  });

  it('refuses a foreign database and a different layout version', async () => {
    await withRaw(dir, (db) => db.put('something', bytes('else')));
    expect(await codeOf(openLevelStore(dir))).toBe('INTERNAL');
    const other = freshDir();
    await (await openLevelStore(other)).close();
    await withRaw(other, (db) => db.put('m!format', bytes('openkey-store/999')));
    expect(await codeOf(openLevelStore(other))).toBe('INTERNAL');
    // The failed opens released the directory.
    await withRaw(dir, async () => undefined);
  });

  describe('tampering on disk', () => {
    const k1 = keyRecord('key_1', 'svc_a');
    const k2 = keyRecord('key_2', 'svc_a', { label: 'second' });

    async function seeded(): Promise<void> {
      const s = await openLevelStore(dir);
      await s.commit([{ kind: 'createPrincipal', principal: principal('svc_a') }, { kind: 'createKey', key: k1 }, { kind: 'createKey', key: k2 }]);
      await s.close();
    }

    /** Overwrites the stored record of key_1 (found by its layout prefix) with `value`. */
    async function tamperKey1(value: (original: string) => Uint8Array): Promise<void> {
      await withRaw(dir, async (db) => {
        const target = `k!${Buffer.from('key_1').toString('hex')}`;
        expect(await rawKeys(db, 'k!')).toContain(target);
        const original = Buffer.from((await db.get(target)) ?? new Uint8Array()).toString('utf8');
        await db.put(target, value(original));
      });
    }

    const edit = (f: (o: Record<string, unknown>) => void) => (original: string): Uint8Array => {
      const o = JSON.parse(original) as Record<string, unknown>;
      f(o);
      return bytes(JSON.stringify(o));
    };

    const garbage: [string, (original: string) => Uint8Array][] = [
      ['random bytes', () => Uint8Array.from({ length: 40 }, (_, i) => (i * 37 + 11) & 0xff)],
      ['empty', () => new Uint8Array(0)],
      ['invalid UTF-8', () => Uint8Array.of(0x7b, 0xff, 0xfe, 0x7d)],
      ['truncated JSON', (o) => bytes(o.slice(0, o.length - 5))],
      ['JSON array', () => bytes('[1,2,3]')],
      ['JSON null', () => bytes('null')],
      ['future format', edit((o) => (o['v'] = 2))],
      ['extra field', edit((o) => (o['admin'] = true))],
      ['missing field', edit((o) => delete o['sealed'])],
      ['wrong type', edit((o) => (o['createdAt'] = '1700000000001'))],
      ['unknown algorithm', edit((o) => (o['algorithm'] = 'rsa'))],
      ['non-canonical base64', edit((o) => (o['sealed'] = `${String(o['sealed'])}!!`))],
      ['bad public key length', edit((o) => (o['publicKey'] = Buffer.alloc(32, 2).toString('base64')))],
      ['empty owner', edit((o) => (o['owner'] = ''))],
      ['record of another key id', edit((o) => (o['keyId'] = 'key_2'))],
    ];

    for (const [name, value] of garbage) {
      it(`key record: ${name} ⇒ SEALED_KEY_CORRUPT from getKey, listKeys and replaceKey; the store keeps serving`, async () => {
        await seeded();
        await tamperKey1(value);
        store = await openLevelStore(dir);
        expect(await codeOf(store.getKey('key_1'))).toBe('SEALED_KEY_CORRUPT');
        expect(await codeOf(store.listKeys('svc_a', { limit: 10 }))).toBe('SEALED_KEY_CORRUPT');
        expect(await codeOf(store.commit([{ kind: 'replaceKey', key: k1 }]))).toBe('SEALED_KEY_CORRUPT');
        // Untouched records still read, and writes still work.
        expect(await store.getKey('key_2')).toEqual(k2);
        expect(await store.listKeys('svc_a', { limit: 10, after: 'key_1' })).toEqual([k2]);
        await store.commit([nonce('svc_a', 'after-tamper')]);
      });
    }

    it('a key record copied under another key id is detected', async () => {
      await seeded();
      await withRaw(dir, async (db) => {
        const from = `k!${Buffer.from('key_2').toString('hex')}`;
        const to = `k!${Buffer.from('key_1').toString('hex')}`;
        await db.put(to, (await db.get(from)) ?? new Uint8Array());
      });
      store = await openLevelStore(dir);
      expect(await codeOf(store.getKey('key_1'))).toBe('SEALED_KEY_CORRUPT');
    });

    it('a forged owner index entry never lists another owner\'s key', async () => {
      await seeded();
      await withRaw(dir, (db) => db.put(`o!${Buffer.from('svc_mallory').toString('hex')}!${Buffer.from('key_1').toString('hex')}`, new Uint8Array(0)));
      store = await openLevelStore(dir);
      expect(await codeOf(store.listKeys('svc_mallory', { limit: 10 }))).toBe('INTERNAL');
      expect(await store.listKeys('svc_a', { limit: 10 })).toEqual([k1, k2]);
    });

    it('an index entry with a missing record or a garbled id is INTERNAL', async () => {
      await seeded();
      await withRaw(dir, async (db) => {
        await db.del(`k!${Buffer.from('key_2').toString('hex')}`);
        await db.put(`o!${Buffer.from('svc_b').toString('hex')}!zz`, new Uint8Array(0));
      });
      store = await openLevelStore(dir);
      expect(await codeOf(store.listKeys('svc_a', { limit: 10 }))).toBe('INTERNAL');
      expect(await codeOf(store.listKeys('svc_b', { limit: 10 }))).toBe('INTERNAL');
      expect(await store.getKey('key_1')).toEqual(k1);
    });

    it('a corrupt principal record is INTERNAL', async () => {
      await seeded();
      await withRaw(dir, async (db) => {
        const [target] = await rawKeys(db, 'p!');
        expect(target).toBeDefined();
        await db.put(target ?? '', bytes('{"v":1,"id":"svc_a"}'));
      });
      store = await openLevelStore(dir);
      expect(await codeOf(store.getPrincipal('svc_a'))).toBe('INTERNAL');
      expect(await codeOf(store.commit([{ kind: 'createPrincipal', principal: principal('svc_a') }]))).toBe('PRINCIPAL_EXISTS');
    });

    it('a corrupt counter or bucket is INTERNAL for its reads and its changes, nothing else', async () => {
      const p = { capacity: 2, refillTokens: 1, refillPeriodMs: 1_000 };
      const s = await openLevelStore(dir);
      await s.commit([increment('cap', 0, 5), take('rate', 0, p)]);
      await s.close();
      await withRaw(dir, async (db) => {
        const [c] = await rawKeys(db, 'c!');
        const [b] = await rawKeys(db, 'b!');
        await db.put(c ?? '', bytes('{"v":1,"windowStart":0,"count":-4}'));
        await db.put(b ?? '', bytes(`{"v":1,"level":999999,"at":0,"capacity":2,"refillTokens":1,"refillPeriodMs":1000}`));
      });
      store = await openLevelStore(dir);
      expect(await codeOf(store.getCounter('cap'))).toBe('INTERNAL');
      expect(await codeOf(store.commit([increment('cap', 0, 5)]))).toBe('INTERNAL');
      expect(await codeOf(store.getTokenBucket('rate'))).toBe('INTERNAL');
      expect(await codeOf(store.commit([take('rate', 0, p)]))).toBe('INTERNAL');
      await store.commit([increment('other', 0, 5), nonce('svc_a', 'n')]);
    });

    it('an audit head rolled back on disk never lets an append overwrite a stored record', async () => {
      const s = await openLevelStore(dir);
      await s.commit([append(auditEntry(1)), append(auditEntry(2)), append(auditEntry(3))]);
      const [, second] = await s.readAudit(1, 3);
      await s.close();
      await withRaw(dir, (db) => db.put('m!audit-head', bytes(JSON.stringify({ v: 1, seq: 2, hash: Buffer.from(second?.hash ?? []).toString('base64') }))));
      store = await openLevelStore(dir);
      expect(await codeOf(store.commit([append(auditEntry(4)), nonce('svc_a', 'n')]))).toBe('INTERNAL');
      expectChain(await store.readAudit(1, 3), 3); // record 3 is still the original
      await store.close();
      store = undefined;
      await withRaw(dir, (db) => db.put('m!audit-head', bytes('{"v":1,"seq":0}')));
      store = await openLevelStore(dir);
      expect(await codeOf(store.getAuditHead())).toBe('INTERNAL');
      expect(await codeOf(store.commit([append(auditEntry(4))]))).toBe('INTERNAL');
    });

    it('a corrupt nonce expiry index entry makes pruneNonces fail with INTERNAL, nothing else', async () => {
      const s = await openLevelStore(dir);
      await s.commit([nonce('svc_a', 'n1', 10)]);
      await s.close();
      await withRaw(dir, (db) => db.put('x!0000000000000001!zz', new Uint8Array(0)));
      store = await openLevelStore(dir);
      expect(await codeOf(store.pruneNonces(1_000))).toBe('INTERNAL');
      expect(await codeOf(store.commit([nonce('svc_a', 'n1')]))).toBe('STAMP_REPLAYED');
    });
  });
});
