// The hash-chained audit log (issue 4 item 4) on a real LevelDB store: concurrent appends form one
// valid chain; records tampered directly in the database (edit, delete, swap, truncate, rollback,
// consistent rewrite) are named by `verifyAuditExport` with a stable code and the first broken seq;
// denials are committed on their own; and a crash right after the commit loses no record.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Level } from 'level';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openLevelStore } from '../adapters/level-store.ts';
import {
  AUDIT_GENESIS_HASH,
  AuditLog,
  appendAudit,
  auditRecordHash,
  commitAudited,
  decodeAuditExport,
  denialAudit,
  encodeAuditExport,
  isAuditId,
  mergeIdentical,
  verifyAuditExport,
  type AuditExport,
  type AuditVerification,
} from './audit.ts';
import { createEd25519Signer } from './crypto/ed25519.ts';
import { isOpenKeyError, type ErrorCode } from './errors.ts';
import { checkKeyPolicy, evaluatePolicy, type PrincipalRef } from './policy.ts';
import type { AuditRecord, KeyRecord, Store } from './ports.ts';

const root = await mkdtemp(join(tmpdir(), 'openkey-audit-'));
let dirs = 0;
const freshDir = (): string => join(root, `db${++dirs}`);
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const identity = createEd25519Signer(new Uint8Array(32).fill(7));
const impostor = createEd25519Signer(new Uint8Array(32).fill(8));
const clock = { now: (): number => 1_750_000_000_000 };
const logOf = (store: Store, sign = identity.sign): AuditLog => new AuditLog({ store, clock, sign });
const sha256 = (s: string): Uint8Array => new Uint8Array(createHash('sha256').update(s).digest());

const OWNER = 'svc_owner';
const service: PrincipalRef = { kind: 'service', id: 'svc_b' };
const key = { keyId: 'key_1', owner: OWNER, algorithm: 'secp256k1', rawDigestSigning: false } as const;
const policy = checkKeyPolicy({ grants: [{ id: 'g', principal: service, operations: ['eip712'] }] });

/** Request n: a service alternating allowed (eip712) and denied (personal_sign) requests. */
async function decide(store: Store, n: number): Promise<ErrorCode | 'allowed'> {
  const operation = n % 2 === 0 ? 'eip712' : 'personal_sign';
  const requestDigest = sha256(`request ${n}`);
  const decision = evaluatePolicy({ principal: service, key, policy, operation, messageBytes: 100, requestDigest, now: clock.now() + n });
  try {
    await commitAudited(store, {
      time: clock.now() + n,
      items: [{ decision, principal: service.id, operation, keyId: key.keyId, requestDigest }],
      always: [{ kind: 'consumeNonce', principalId: service.id, nonce: `n${n}`, expiresAt: clock.now() + 60_000 }],
    });
    return 'allowed';
  } catch (e) {
    if (isOpenKeyError(e)) return e.code;
    throw e;
  }
}

const verify = (exp: AuditExport, anchors?: AuditExport['head'][]): AuditVerification =>
  verifyAuditExport(exp, identity.publicKey, anchors === undefined ? {} : { anchors });

// ---- Raw database access, as the host has it ----------------------------------------------------

const recordKey = (seq: number): string => `a!${seq.toString(16).padStart(16, '0')}`;
type Raw = Level<string, Uint8Array>;
async function withRaw(dir: string, fn: (db: Raw) => Promise<void>): Promise<void> {
  const db: Raw = new Level<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view' });
  await db.open();
  try {
    await fn(db);
  } finally {
    await db.close();
  }
}
const readJson = async (db: Raw, k: string): Promise<Record<string, unknown>> => JSON.parse(Buffer.from((await db.get(k)) ?? []).toString('utf8')) as Record<string, unknown>;
const writeJson = (db: Raw, k: string, o: Record<string, unknown>): Promise<void> => db.put(k, new Uint8Array(Buffer.from(JSON.stringify(o), 'utf8')));
const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
const unb64 = (v: unknown): Uint8Array => new Uint8Array(Buffer.from(String(v), 'base64'));
/** The stored JSON of a record with its hash recomputed after an edit (a careful attacker). */
function rehashed(o: Record<string, unknown>): Record<string, unknown> {
  const r = { ...o, requestDigest: unb64(o['requestDigest']), prevHash: unb64(o['prevHash']) } as unknown as AuditRecord;
  return { ...o, hash: b64(auditRecordHash(r)) };
}

// ---- Tests --------------------------------------------------------------------------------------

describe('audit log on LevelDB', () => {
  let dir: string;
  let store: Store | undefined;
  beforeEach(() => {
    dir = freshDir();
  });
  afterEach(async () => {
    await store?.close();
    store = undefined;
  });

  /** 100 decisions committed concurrently, then the store closed. */
  async function seeded(): Promise<void> {
    const s = await openLevelStore(dir);
    const results = await Promise.all(Array.from({ length: 100 }, (_, n) => decide(s, n)));
    expect(results.filter((r) => r === 'allowed')).toHaveLength(50);
    expect(new Set(results.filter((r) => r !== 'allowed'))).toEqual(new Set(['KEY_NOT_FOUND']));
    await s.close();
  }

  async function exportAll(to?: number): Promise<AuditExport> {
    store = await openLevelStore(dir);
    return logOf(store).export(1, to);
  }

  it('100 concurrent decisions form one valid chain, signed by the identity key', async () => {
    await seeded();
    const exp = await exportAll();
    expect(exp.records).toHaveLength(100);
    const result = verify(exp);
    expect(result).toMatchObject({ ok: true, from: 1, to: 100, logSeq: 100 });
    // Allowed and denied decisions are both there, with the specific reason only in the log.
    const reasons = new Set(exp.records.map((r) => `${r.decision}:${r.reason}:${r.operation}`));
    expect(reasons).toEqual(new Set(['allow:GRANT:eip712', 'deny:OPERATION_NOT_GRANTED:personal_sign']));
    // JSON round trip (RPC payload, CLI file) verifies the same.
    expect(verify(decodeAuditExport(encodeAuditExport(exp)))).toEqual(result);
    // The signed head on request is the same head.
    const head = await logOf(store as Store).signedHead();
    expect({ seq: head.seq, hash: head.hash }).toEqual({ seq: 100, hash: exp.head.hash });
  });

  it('pages verify on their own and chain to each other through anchors', async () => {
    await seeded();
    store = await openLevelStore(dir);
    const log = logOf(store);
    const first = await log.export(1, 40);
    const second = await log.export(41, 100);
    const a = verify(first);
    expect(a).toMatchObject({ ok: true, to: 40, logSeq: 100 });
    // The first page's head (hash of record 40, taken from record 41's link) anchors the second page.
    expect(first.head.hash).toEqual(second.records[0]?.prevHash);
    expect(verify(second, [first.head])).toMatchObject({ ok: true, from: 41, to: 100 });
    // A page that does not start where the anchor says is caught.
    const third = await log.export(42, 100);
    expect(verify(third, [{ ...first.head, seq: 41 }])).toEqual({ ok: false, code: 'ANCHOR_MISMATCH', seq: 42 });
    // Empty ranges: an empty export of an empty tail, and an empty log.
    expect(verify(await log.export(101, 100), [second.head])).toMatchObject({ ok: true, from: 101, to: 100 });
    const empty = await openLevelStore(freshDir());
    try {
      expect(verify(await logOf(empty).export(1))).toMatchObject({ ok: true, to: 0, logSeq: 0, hash: AUDIT_GENESIS_HASH });
    } finally {
      await empty.close();
    }
  });

  it('export ranges are bounded and within the log', async () => {
    await seeded();
    store = await openLevelStore(dir);
    const log = logOf(store);
    const codeOf = async (p: Promise<unknown>): Promise<unknown> => p.then(() => 'ok', (e: unknown) => (isOpenKeyError(e) ? e.code : e));
    expect(await codeOf(log.export(0, 5))).toBe('MALFORMED_REQUEST');
    expect(await codeOf(log.export(5, 101))).toBe('MALFORMED_REQUEST');
    expect(await codeOf(log.export(5, 3))).toBe('MALFORMED_REQUEST');
    expect(await codeOf(log.export(103))).toBe('MALFORMED_REQUEST');
  });

  describe('tampering in the database is named at the first broken seq', () => {
    const cases: [string, (db: Raw) => Promise<void>, AuditVerification][] = [
      [
        'edit a field of record 37',
        async (db) => {
          const o = await readJson(db, recordKey(37));
          await writeJson(db, recordKey(37), { ...o, decision: o['decision'] === 'allow' ? 'deny' : 'allow' });
        },
        { ok: false, code: 'RECORD_HASH_MISMATCH', seq: 37 },
      ],
      [
        'edit record 37 and recompute its hash',
        async (db) => writeJson(db, recordKey(37), rehashed({ ...(await readJson(db, recordKey(37))), principal: 'svc_someone_else' })),
        { ok: false, code: 'CHAIN_LINK_BROKEN', seq: 38 },
      ],
      [
        'claim that record 37 stands for 64 decisions',
        async (db) => writeJson(db, recordKey(37), { ...(await readJson(db, recordKey(37))), count: 64 }),
        { ok: false, code: 'RECORD_HASH_MISMATCH', seq: 37 },
      ],
      ['delete record 37', (db) => db.del(recordKey(37)), { ok: false, code: 'SEQUENCE_BROKEN', seq: 37 }],
      [
        'swap records 37 and 38',
        async (db) => {
          const [a, b] = [await db.get(recordKey(37)), await db.get(recordKey(38))];
          await db.batch([
            { type: 'put', key: recordKey(37), value: b ?? new Uint8Array() },
            { type: 'put', key: recordKey(38), value: a ?? new Uint8Array() },
          ]);
        },
        { ok: false, code: 'SEQUENCE_BROKEN', seq: 37 },
      ],
      [
        'swap records 37 and 38 and renumber them',
        async (db) => {
          const [a, b] = [await readJson(db, recordKey(37)), await readJson(db, recordKey(38))];
          await writeJson(db, recordKey(37), { ...b, seq: 37 });
          await writeJson(db, recordKey(38), { ...a, seq: 38 });
        },
        { ok: false, code: 'RECORD_HASH_MISMATCH', seq: 37 },
      ],
      [
        'duplicate record 1 over record 2',
        async (db) => db.put(recordKey(2), (await db.get(recordKey(1))) ?? new Uint8Array()),
        { ok: false, code: 'SEQUENCE_BROKEN', seq: 2 },
      ],
      [
        'edit the first record',
        async (db) => writeJson(db, recordKey(1), { ...(await readJson(db, recordKey(1))), time: 5 }),
        { ok: false, code: 'RECORD_HASH_MISMATCH', seq: 1 },
      ],
      [
        'forge a new first record (rehashed, but not from genesis)',
        async (db) => writeJson(db, recordKey(1), rehashed({ ...(await readJson(db, recordKey(1))), prevHash: b64(new Uint8Array(32).fill(1)) })),
        { ok: false, code: 'CHAIN_LINK_BROKEN', seq: 1 },
      ],
      [
        'truncate the tail (records 96–100)',
        async (db) => {
          for (let s = 96; s <= 100; s++) await db.del(recordKey(s));
        },
        { ok: false, code: 'TRUNCATED', seq: 96 },
      ],
      [
        'edit the last record and recompute its hash',
        async (db) => writeJson(db, recordKey(100), rehashed({ ...(await readJson(db, recordKey(100))), reason: 'OWNER' })),
        { ok: false, code: 'HEAD_MISMATCH', seq: 100 },
      ],
    ];

    it.each(cases)('%s', async (_name, tamper, expected) => {
      await seeded();
      await withRaw(dir, tamper);
      expect(verify(await exportAll())).toEqual(expected);
    });

    it('a truncation that also rolls the head back is caught by an earlier signed head (anchor)', async () => {
      await seeded();
      const earlier = (await exportAll()).head; // a client kept this signed head
      await store?.close();
      store = undefined;
      await withRaw(dir, async (db) => {
        for (let s = 96; s <= 100; s++) await db.del(recordKey(s));
        const r95 = await readJson(db, recordKey(95));
        await writeJson(db, 'm!audit-head', { v: 1, seq: 95, hash: r95['hash'] });
      });
      const exp = await exportAll();
      expect(verify(exp)).toMatchObject({ ok: true, to: 95 }); // consistent on its own…
      expect(verify(exp, [earlier])).toEqual({ ok: false, code: 'ROLLED_BACK', seq: 96 }); // …but not with history
    });

    it('a consistent rewrite from record 50 on is caught by an anchor inside the range', async () => {
      await seeded();
      const anchor = (await logOf((store = await openLevelStore(dir))).export(1, 60)).head;
      await store.close();
      store = undefined;
      await withRaw(dir, async (db) => {
        let prev: string | undefined;
        for (let s = 50; s <= 100; s++) {
          const o = await readJson(db, recordKey(s));
          const edited = rehashed({ ...o, ...(s === 50 ? { decision: o['decision'] === 'allow' ? 'deny' : 'allow' } : {}), ...(prev === undefined ? {} : { prevHash: prev }) });
          await writeJson(db, recordKey(s), edited);
          prev = String(edited['hash']);
        }
        await writeJson(db, 'm!audit-head', { v: 1, seq: 100, hash: prev });
      });
      const exp = await exportAll();
      expect(verify(exp)).toMatchObject({ ok: true });
      expect(verify(exp, [anchor])).toEqual({ ok: false, code: 'ANCHOR_MISMATCH', seq: 60 });
    });

    it('a record that no longer parses makes the export fail cleanly with INTERNAL', async () => {
      await seeded();
      await withRaw(dir, (db) => db.put(recordKey(37), new Uint8Array([0x7b, 0xff])));
      // A count of 1 is never written (one decision has no count): a record holding it is corrupt.
      await withRaw(dir, async (db) => writeJson(db, recordKey(30), { ...(await readJson(db, recordKey(30))), count: 1 }));
      store = await openLevelStore(dir);
      for (const seq of [30, 37]) {
        const err = await logOf(store).export(seq, seq).catch((e: unknown) => e);
        expect(isOpenKeyError(err) && err.code, `record ${seq}`).toBe('INTERNAL');
      }
      expect(verify(await logOf(store).export(31, 35))).toMatchObject({ ok: true, from: 31 });
      expect(verify(await logOf(store).export(38))).toMatchObject({ ok: true, from: 38 });
    });
  });

  it('a denied request is its own commit: its other changes are not written, its record and nonce are', async () => {
    store = await openLevelStore(dir);
    const requestDigest = sha256('create key');
    const created: KeyRecord = {
      keyId: 'key_new',
      owner: service.id,
      algorithm: 'secp256k1',
      publicKey: Uint8Array.from({ length: 33 }, (_, i) => (i === 0 ? 2 : i)),
      label: '',
      rawDigestSigning: false,
      createdAt: 1,
      sealed: new Uint8Array(40).fill(1),
    };
    const denied = evaluatePolicy({ principal: service, key, policy, operation: 'personal_sign', messageBytes: 1, requestDigest, now: clock.now() });
    const err = await commitAudited(store, {
      time: clock.now(),
      items: [{ decision: denied, principal: service.id, operation: 'personal_sign', keyId: key.keyId, requestDigest }],
      always: [{ kind: 'consumeNonce', principalId: service.id, nonce: 'd1', expiresAt: clock.now() }],
      ifAllowed: [{ kind: 'createKey', key: created }],
    }).catch((e: unknown) => e);
    expect(isOpenKeyError(err) && err.code).toBe('KEY_NOT_FOUND');
    expect(await store.getKey('key_new')).toBeUndefined();
    expect(await store.readAudit(1, 10)).toMatchObject([{ seq: 1, decision: 'deny', reason: 'OPERATION_NOT_GRANTED', principal: service.id, requestDigest }]);
    const replay = await store.commit([{ kind: 'consumeNonce', principalId: service.id, nonce: 'd1', expiresAt: 0 }]).catch((e: unknown) => e);
    expect(isOpenKeyError(replay) && replay.code).toBe('STAMP_REPLAYED');
    // The helper for hand-built denials gives the same kind of record.
    await store.commit([denialAudit({ time: 2, principal: '', operation: 'login', keyId: '', requestDigest: new Uint8Array(0) }, 'STAMP_INVALID')]);
    expect(verify(await logOf(store).export(1))).toMatchObject({ ok: true, to: 2 });
  });

  it('a batch with one denied item writes only deny records; a cap that runs out at commit denies the batch', async () => {
    store = await openLevelStore(dir);
    const capped = checkKeyPolicy({ grants: [{ id: 'g', principal: service, operations: ['eip712'], caps: [{ limit: 3, windowMs: 86_400_000 }] }] });
    const item = (operation: 'eip712' | 'personal_sign', n: number) => {
      const requestDigest = sha256(`batch item ${n}`);
      return { decision: evaluatePolicy({ principal: service, key, policy: capped, operation, messageBytes: 1, requestDigest, now: clock.now() }), principal: service.id, operation, keyId: key.keyId, requestDigest };
    };
    const run = (items: ReturnType<typeof item>[]): Promise<unknown> => commitAudited(store as Store, { time: clock.now(), items }).then(() => 'ok', (e: unknown) => (isOpenKeyError(e) ? e.code : e));
    expect(await run([item('eip712', 1), item('personal_sign', 2)])).toBe('KEY_NOT_FOUND');
    expect(await run([item('eip712', 3), item('eip712', 4)])).toBe('ok');
    expect(await run([item('eip712', 5), item('eip712', 6)])).toBe('CAP_EXCEEDED'); // 2 + 2 > 3: all or nothing
    expect(await run([item('eip712', 7)])).toBe('ok');
    const records = await store.readAudit(1, 100);
    expect(records.map((r) => `${r.decision}:${r.reason}`)).toEqual([
      'deny:BATCH_ITEM_DENIED',
      'deny:OPERATION_NOT_GRANTED',
      'allow:GRANT',
      'allow:GRANT',
      'deny:CAP_EXCEEDED',
      'deny:CAP_EXCEEDED',
      'allow:GRANT',
    ]);
    expect(verify(await logOf(store).export(1))).toMatchObject({ ok: true, to: 7 });
  });

  it('a crash right after the commit (SIGKILL before any response) loses no record', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./test/audit-crash-child.ts', import.meta.url)), dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let errText = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (errText += d.toString()));
    const signal = await new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, sig) => resolve(sig)));
    expect(errText).toBe('');
    expect(out).toBe('committed\n');
    expect(signal).toBe('SIGKILL');

    store = await openLevelStore(dir); // the next process
    const exp = await logOf(store).export(1);
    expect(verify(exp)).toMatchObject({ ok: true, to: 1 });
    expect(exp.records[0]).toMatchObject({ decision: 'allow', reason: 'OWNER', keyId: 'key_crash', principal: 'svc_owner' });
    const replay = await store.commit([{ kind: 'consumeNonce', principalId: 'svc_owner', nonce: 'crash-nonce', expiresAt: 0 }]).catch((e: unknown) => e);
    expect(isOpenKeyError(replay) && replay.code).toBe('STAMP_REPLAYED');
  });
});

// ---- The verifier on its own (pure) -------------------------------------------------------------

describe('verifyAuditExport', () => {
  let exp: AuditExport;
  beforeEach(async () => {
    const store = await openLevelStore(freshDir());
    try {
      for (let n = 0; n < 12; n++) await store.commit([appendAudit({ time: n, principal: `svc_${n}`, operation: 'eip712', keyId: 'key_1', requestDigest: sha256(String(n)), decision: 'allow', reason: 'GRANT' })]);
      exp = await logOf(store).export(1);
    } finally {
      await store.close();
    }
  });
  const withRecord = (i: number, over: Partial<AuditRecord>): AuditExport => ({ ...exp, records: exp.records.map((r, j) => (j === i ? { ...r, ...over } : r)) });

  it('editing any field of any record is named at that record', () => {
    expect(verify(exp)).toMatchObject({ ok: true, to: 12 });
    const edits: Partial<AuditRecord>[] = [{ time: 999 }, { principal: 'svc_x' }, { operation: 'raw_digest' }, { keyId: 'key_2' }, { requestDigest: sha256('x') }, { decision: 'deny' }, { reason: 'OWNER' }];
    for (let i = 0; i < exp.records.length; i++) {
      for (const e of edits) expect(verify(withRecord(i, e)), `${i + 1} ${Object.keys(e)[0]}`).toEqual({ ok: false, code: 'RECORD_HASH_MISMATCH', seq: i + 1 });
    }
  });

  it('a head signed by another key, a flipped signature bit or an edited head fails the signature', () => {
    const head = exp.head;
    const forged = { ...head, signature: impostor.sign(new Uint8Array(0)) };
    const flipped = { ...head, signature: head.signature.map((b, i) => (i === 5 ? b ^ 1 : b)) };
    for (const h of [forged, flipped, { ...head, seq: 11 }, { ...head, logSeq: 13 }, { ...head, time: head.time + 1 }, { ...head, hash: new Uint8Array(32) }]) {
      expect(verify({ ...exp, head: h })).toEqual({ ok: false, code: 'HEAD_SIGNATURE_INVALID', seq: h.seq });
    }
    expect(verifyAuditExport(exp, impostor.publicKey)).toEqual({ ok: false, code: 'HEAD_SIGNATURE_INVALID', seq: 12 });
    expect(verifyAuditExport(exp, new Uint8Array(5))).toEqual({ ok: false, code: 'HEAD_SIGNATURE_INVALID', seq: 12 });
  });

  it('removing, reordering, duplicating or adding records in the export is named', () => {
    const rs = exp.records;
    const at = (records: readonly AuditRecord[]): AuditVerification => verify({ ...exp, records });
    expect(at([...rs.slice(0, 4), ...rs.slice(5)])).toEqual({ ok: false, code: 'SEQUENCE_BROKEN', seq: 5 });
    expect(at([...rs.slice(0, 4), rs[5], rs[4], ...rs.slice(6)] as AuditRecord[])).toEqual({ ok: false, code: 'SEQUENCE_BROKEN', seq: 5 });
    expect(at(rs.slice(0, 9))).toEqual({ ok: false, code: 'TRUNCATED', seq: 10 });
    expect(at([...rs, rs[11] as AuditRecord])).toEqual({ ok: false, code: 'SEQUENCE_BROKEN', seq: 13 });
    expect(at([])).toEqual({ ok: false, code: 'TRUNCATED', seq: 1 });
  });

  it('malformed exports are reported, never thrown', () => {
    const bad: unknown[] = [
      null,
      { ...exp, version: 2 },
      { ...exp, from: 0 },
      { ...exp, records: 'all of them' },
      { ...exp, head: { ...exp.head, hash: new Uint8Array(31) } },
      { ...exp, head: undefined },
    ];
    for (const b of bad) expect(verify(b as AuditExport)).toMatchObject({ ok: false, code: 'MALFORMED_EXPORT' });
    expect(verify(withRecord(3, { requestDigest: new Uint8Array(7) }))).toEqual({ ok: false, code: 'MALFORMED_EXPORT', seq: 4 });
    expect(verify(withRecord(3, { seq: -1 }))).toEqual({ ok: false, code: 'MALFORMED_EXPORT', seq: 4 });
    expect(() => decodeAuditExport('{"version":1')).toThrow(expect.objectContaining({ code: 'MALFORMED_REQUEST' }));
    expect(() => decodeAuditExport(encodeAuditExport(exp).replace(/"hash":"[0-9a-f]{2}/, '"hash":"zz'))).toThrow(expect.objectContaining({ code: 'MALFORMED_REQUEST' }));
  });
});

describe('records of several identical decisions (count)', () => {
  const entry = { time: 5, principal: 'svc_b', operation: 'personal_sign', keyId: 'key_1', requestDigest: sha256('batch'), decision: 'allow', reason: 'GRANT' } as const;

  /** The record hash spelled out from its definition: tag, then u32-BE-length-prefixed UTF-8 strings
   * and bytes and u64-BE integers, SHA-256 over that and prevHash. */
  function definedHash(r: Omit<AuditRecord, 'hash'>): Uint8Array {
    const parts: Buffer[] = [];
    const lp = (b: Uint8Array): void => {
      const len = Buffer.alloc(4);
      len.writeUInt32BE(b.length);
      parts.push(len, Buffer.from(b));
    };
    const u64 = (n: number): void => {
      const b = Buffer.alloc(8);
      b.writeBigUInt64BE(BigInt(n));
      parts.push(b);
    };
    lp(Buffer.from(r.count === undefined ? 'openkey-audit-record-v1' : 'openkey-audit-record-v2'));
    u64(r.seq);
    u64(r.time);
    for (const f of [r.principal, r.operation, r.keyId]) lp(Buffer.from(f));
    lp(r.requestDigest);
    for (const f of [r.decision, r.reason]) lp(Buffer.from(f));
    if (r.count !== undefined) u64(r.count);
    return new Uint8Array(createHash('sha256').update(Buffer.concat(parts)).update(r.prevHash).digest());
  }

  it('identical entries become one entry with their count, in order of first appearance; any difference keeps its own', () => {
    const other = { ...entry, keyId: 'key_2' };
    const denied = { ...entry, decision: 'deny', reason: 'BATCH_ITEM_DENIED' } as const;
    expect(mergeIdentical([entry, other, entry, entry, other])).toEqual([
      { ...entry, count: 3 },
      { ...other, count: 2 },
    ]);
    expect(mergeIdentical([entry])).toEqual([entry]);
    expect(mergeIdentical([denied, entry])).toEqual([denied, entry]);
    for (const change of [{ time: 6 }, { principal: 'svc_c' }, { operation: 'eip712' }, { keyId: '' }, { requestDigest: sha256('other') }, { decision: 'deny' }, { reason: 'OWNER' }] as const) {
      expect(mergeIdentical([entry, { ...entry, ...change }]), Object.keys(change)[0]).toHaveLength(2);
    }
    // Counts add up.
    expect(mergeIdentical([{ ...entry, count: 2 }, entry, { ...entry, count: 5 }])).toEqual([{ ...entry, count: 8 }]);
  });

  it('hash as defined: a record of one decision keeps the v1 hash, a counted one commits to its count under v2', async () => {
    const store = await openLevelStore(freshDir());
    try {
      await store.commit([appendAudit(entry), appendAudit({ ...entry, count: 64 }), appendAudit({ ...entry, count: 1 })]);
      const records = await store.readAudit(1, 3);
      expect(records.map((r) => r.count)).toEqual([undefined, 64, undefined]); // 1 is stored as absent
      for (const r of records) expect(r.hash).toEqual(definedHash(r));
      const [one, many] = records as [AuditRecord, AuditRecord];
      expect(definedHash({ ...many, count: 63 })).not.toEqual(many.hash);
      expect(definedHash({ ...one, seq: 2, prevHash: one.hash })).not.toEqual(many.hash); // same fields, no count
      const exp = await logOf(store).export(1);
      expect(verify(exp)).toMatchObject({ ok: true, to: 3 });
      // The JSON form carries the count and verifies the same.
      expect(verify(decodeAuditExport(encodeAuditExport(exp)))).toMatchObject({ ok: true, to: 3 });
    } finally {
      await store.close();
    }
  });

  it('changing, adding or removing a count is a hash mismatch; a count that is no count is malformed', async () => {
    const store = await openLevelStore(freshDir());
    let exp: AuditExport;
    try {
      await store.commit([appendAudit(entry), appendAudit({ ...entry, count: 64 })]);
      exp = await logOf(store).export(1);
    } finally {
      await store.close();
    }
    // `over` may hold what no AuditRecord can: the verifier gets exports from outside.
    const at = (i: number, over: Readonly<Record<string, unknown>>): AuditVerification => verify({ ...exp, records: exp.records.map((r, j) => (j === i ? ({ ...r, ...over } as AuditRecord) : r)) });
    const { count: _dropped, ...uncounted } = exp.records[1] as AuditRecord;
    expect(verify({ ...exp, records: [exp.records[0] as AuditRecord, uncounted] })).toEqual({ ok: false, code: 'RECORD_HASH_MISMATCH', seq: 2 });
    expect(at(1, { count: 65 })).toEqual({ ok: false, code: 'RECORD_HASH_MISMATCH', seq: 2 });
    expect(at(0, { count: 2 })).toEqual({ ok: false, code: 'RECORD_HASH_MISMATCH', seq: 1 });
    for (const count of [0, 1, -2, 2.5, 2 ** 32, '64', null]) expect(at(1, { count }), String(count)).toEqual({ ok: false, code: 'MALFORMED_EXPORT', seq: 2 });
    // Neither appendAudit nor the store (given the Change directly) writes a count that is no count.
    const bad = await openLevelStore(freshDir());
    try {
      for (const count of [0, -1, 2.5, 2 ** 32]) {
        expect(() => appendAudit({ ...entry, count }), String(count)).toThrow(expect.objectContaining({ code: 'INTERNAL', message: expect.stringContaining('count') }));
        await expect(bad.commit([{ kind: 'appendAudit', entry: { ...entry, count } }]), String(count)).rejects.toMatchObject({ code: 'INTERNAL', message: expect.stringContaining('count') });
      }
      expect(await bad.getAuditHead()).toMatchObject({ seq: 0 });
    } finally {
      await bad.close();
    }
  });

  it('a batch signed with one key is one record; a denied batch is one record per reason', async () => {
    const store = await openLevelStore(freshDir());
    try {
      const open = checkKeyPolicy({ grants: [{ id: 'g', principal: service, operations: ['eip712'] }] });
      const requestDigest = sha256('one batch request');
      const item = (operation: 'eip712' | 'personal_sign') => ({ decision: evaluatePolicy({ principal: service, key, policy: open, operation, messageBytes: 1, requestDigest, now: clock.now() }), principal: service.id, operation, keyId: key.keyId, requestDigest });
      await commitAudited(store, { time: clock.now(), items: Array.from({ length: 64 }, () => item('eip712')) });
      const refused = await commitAudited(store, { time: clock.now(), items: [item('eip712'), item('personal_sign'), item('eip712')] }).catch((e: unknown) => e);
      expect(refused).toMatchObject({ code: 'KEY_NOT_FOUND' });
      const records = await store.readAudit(1, 100);
      expect(records.map((r) => `${r.decision}:${r.reason}×${r.count ?? 1}`)).toEqual(['allow:GRANT×64', 'deny:BATCH_ITEM_DENIED×2', 'deny:OPERATION_NOT_GRANTED×1']);
      expect(verify(await logOf(store).export(1))).toMatchObject({ ok: true, to: 3 });
    } finally {
      await store.close();
    }
  });
});

describe('audit ids', () => {
  it('accepts any well-formed string up to 512 UTF-16 units, and nothing that would not survive UTF-8', () => {
    for (const ok of ['', 'svc_1', 'key_00ff', '\ufeffbom first', 'emoji 😀 pair', 'x'.repeat(512)]) expect(isAuditId(ok)).toBe(true);
    for (const bad of ['lone \ud800', '\udc00 trailing half', 'pair then half 😀\ud83d', 'x'.repeat(513), 7, undefined]) expect(isAuditId(bad)).toBe(false);
  });
});
