// The host tampers with the audit log on disk (DESIGN "Audit"): an appliance writes ~20 records and
// stops; each case edits a COPY of its LevelDB directly (edit, delete, reorder, truncate, rewrite
// with a recomputed hash, consistent rollback), a fresh appliance serves the copy, and the exported
// log must fail verification with the right code at the right seq — via `openkey audit verify` too.

import { ConnectError } from '@connectrpc/connect';
import { ClassicLevel } from 'classic-level';
import { execFile } from 'node:child_process';
import { cpSync, lstatSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyAlgorithm } from '../proto/gen/openkey/v1/common_pb.ts';
import { PrincipalKeyAlgorithm } from '../proto/gen/openkey/v1/principals_pb.ts';
import { exportAuditLog, type AuditExportResult } from '../clients/src/cli/audit.ts';
import { createOpenKeyClient, generateCredentials, saveCredentials, type Credentials } from '../clients/src/index.ts';
import { openLevelStore } from '../server/src/adapters/level-store.ts';
import { appendAudit, auditRecordHash, encodeAuditExport, verifyAuditExport, type AuditVerification } from '../server/src/core/audit.ts';
import type { AuditHead } from '../server/src/core/ports.ts';
import { startTestAppliance, type TestAppliance } from './support/appliance.ts';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const cli = join(root, 'clients/src/cli/main.ts');
const tsx = join(root, 'node_modules/.bin/tsx');

/** An audit record as record-codec.ts stores it: JSON, bytes as base64. */
interface StoredRecord {
  v: number;
  seq: number;
  time: number;
  principal: string;
  operation: string;
  keyId: string;
  requestDigest: string;
  decision: string;
  reason: string;
  prevHash: string;
  hash: string;
}
type Db = ClassicLevel<string, string>;

const auditKey = (seq: number) => `a!${seq.toString(16).padStart(16, '0')}`;
const HEAD_KEY = 'm!audit-head';
const b64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));

async function readRecord(db: Db, seq: number): Promise<StoredRecord> {
  const raw = await db.get(auditKey(seq));
  if (raw === undefined) throw new Error(`no record ${seq}`);
  return JSON.parse(raw) as StoredRecord;
}
const writeRecord = (db: Db, r: StoredRecord) => db.put(auditKey(r.seq), JSON.stringify(r));
/** The record's own hash as the appliance computes it, after an edit. */
function rehashed(r: StoredRecord): StoredRecord {
  const hash = auditRecordHash({ ...r, decision: r.decision as 'allow' | 'deny', requestDigest: b64(r.requestDigest), prevHash: b64(r.prevHash) });
  return { ...r, hash: Buffer.from(hash).toString('base64') };
}

describe('a tampered audit log is caught at the right record', () => {
  let base: TestAppliance;
  let creds: Credentials;
  let dir: string;
  /** Records in the untampered log (the last is the baseline export's own read record). */
  let n = 0;
  /** The head the baseline export proved: a verifier that kept it catches a consistent rollback. */
  let anchor: AuditHead;
  let firstDenial = 0;
  let reasons: string[] = [];
  const copies: string[] = [];

  /** A copy of the stopped appliance's data directory, edited through LevelDB, served afresh. */
  async function tampered(edit: (db: Db) => Promise<void>, grow?: (storeDir: string) => Promise<void>): Promise<TestAppliance> {
    const copy = mkdtempSync(join(tmpdir(), 'openkey-tamper-'));
    copies.push(copy);
    cpSync(base.dataDir, copy, { recursive: true, filter: (src) => !lstatSync(src).isSocket() });
    if (grow !== undefined) await grow(join(copy, 'store'));
    const db: Db = new ClassicLevel(join(copy, 'store'), { keyEncoding: 'utf8', valueEncoding: 'utf8' });
    try {
      await edit(db);
    } finally {
      await db.close();
    }
    const app = await startTestAppliance({ dataDir: copy });
    expect(app.identityPublicKey).toEqual(base.identityPublicKey); // same sealed identity: the copy is the appliance's
    return app;
  }
  const exportOf = (app: TestAppliance, to?: number): Promise<AuditExportResult> =>
    exportAuditLog(createOpenKeyClient({ baseUrl: app.connectUrl, credentials: creds }).audit, to === undefined ? { from: 1 } : { from: 1, to });
  const verdict = (r: AuditExportResult, anchors: readonly AuditHead[] = []): AuditVerification => verifyAuditExport(r.export, base.identityPublicKey, { anchors });
  /** `openkey audit verify` on an export file: its stdout and exit code. */
  async function cliVerify(r: AuditExportResult, ...extra: string[]): Promise<{ stdout: string; exitCode: number }> {
    const file = join(dir, `export-${copies.length}.json`);
    writeFileSync(file, encodeAuditExport(r.export));
    const argv = [cli, 'audit', 'verify', file, '--identity-key', Buffer.from(base.identityPublicKey).toString('hex'), ...extra];
    return run(tsx, argv, { cwd: root }).then(
      ({ stdout }) => ({ stdout, exitCode: 0 }),
      (e: { stdout?: string; code?: number }) => ({ stdout: e.stdout ?? '', exitCode: e.code ?? -1 }),
    );
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'openkey-tamper-cli-'));
    base = await startTestAppliance();
    creds = generateCredentials('ed25519');
    saveCredentials(join(dir, 'creds.json'), creds);
    const client = createOpenKeyClient({ baseUrl: base.connectUrl, credentials: creds });
    await client.principals.createPrincipal({ algorithm: PrincipalKeyAlgorithm.ED25519, publicKey: creds.publicKey, name: 'tamper' });
    const keyId = (await client.keys.sealKey({ algorithm: KeyAlgorithm.SECP256K1 })).key?.keyId ?? '';
    // Allowed signatures, with a denial (an unknown key) every fourth request.
    for (let i = 0; i < 18; i++) {
      const target = i % 4 === 3 ? `key_${'0'.repeat(32)}` : keyId;
      await client.signing.sign({ keyId: target, payload: { kind: { case: 'personalMessage', value: { message: new TextEncoder().encode(`m${i}`) } } } }).catch((e: unknown) => {
        if (!(e instanceof ConnectError)) throw e;
      });
    }
    const baseline = await exportAuditLog(client.audit, { from: 1 });
    const v = verifyAuditExport(baseline.export, base.identityPublicKey);
    if (!v.ok) throw new Error(`baseline does not verify: ${v.code} at ${v.seq}`);
    n = v.to;
    anchor = { seq: v.to, hash: v.hash };
    firstDenial = baseline.export.records.find((r) => r.decision === 'deny')?.seq ?? 0;
    reasons = baseline.export.records.map((r) => `${r.operation} ${r.decision} ${r.reason}`);
    await base.close();
  });
  afterAll(async () => {
    await base.close();
    for (const c of [...copies, base.dataDir, dir]) rmSync(c, { recursive: true, force: true });
  });

  it('the baseline has about twenty records: allowed signatures, denials among them', () => {
    expect(n).toBeGreaterThanOrEqual(20);
    expect(reasons.filter((r) => r === 'personal_sign allow OWNER')).toHaveLength(14);
    expect(reasons.filter((r) => r === 'personal_sign deny KEY_UNKNOWN')).toHaveLength(4);
    expect(reasons[firstDenial - 1]).toBe('personal_sign deny KEY_UNKNOWN');
  });

  it('control: an untouched copy verifies, also against the anchor', async () => {
    const app = await tampered(async () => undefined);
    const r = await exportOf(app);
    await app.close();
    expect(verdict(r, [anchor])).toMatchObject({ ok: true, from: 1, to: n + 1 });
  });

  it('editing a field of one record (a denial rewritten as allowed): RECORD_HASH_MISMATCH there — CLI export + verify', async () => {
    const app = await tampered(async (db) => {
      const r = await readRecord(db, firstDenial);
      await writeRecord(db, { ...r, decision: 'allow', reason: 'OWNER' });
    });
    const file = join(dir, 'edited.json');
    const opts = ['--url', app.connectUrl, '--credentials', join(dir, 'creds.json')];
    await run(tsx, [cli, 'audit', 'export', '--out', file, ...opts], { cwd: root });
    await app.close();
    const out = await run(tsx, [cli, 'audit', 'verify', file, '--identity-key', Buffer.from(base.identityPublicKey).toString('hex')], { cwd: root }).then(
      () => ({ stdout: '', exitCode: 0 }),
      (e: { stdout?: string; code?: number }) => ({ stdout: e.stdout ?? '', exitCode: e.code ?? -1 }),
    );
    expect(out.exitCode).toBe(1);
    expect(out.stdout).toMatch(new RegExp(`^BROKEN at seq ${firstDenial}: RECORD_HASH_MISMATCH — `));
  });

  it('deleting a record: SEQUENCE_BROKEN at its seq', async () => {
    const app = await tampered((db) => db.del(auditKey(5)));
    const r = await exportOf(app);
    await app.close();
    expect(verdict(r)).toEqual({ ok: false, code: 'SEQUENCE_BROKEN', seq: 5 });
  });

  it('swapping two records (reorder): SEQUENCE_BROKEN at the first — and the CLI says so', async () => {
    const app = await tampered(async (db) => {
      const [a, b] = [await db.get(auditKey(5)), await db.get(auditKey(6))];
      if (a === undefined || b === undefined) throw new Error('records 5 and 6 missing');
      await db.batch([
        { type: 'put', key: auditKey(5), value: b },
        { type: 'put', key: auditKey(6), value: a },
      ]);
    });
    const r = await exportOf(app);
    await app.close();
    expect(verdict(r)).toEqual({ ok: false, code: 'SEQUENCE_BROKEN', seq: 5 });
    const out = await cliVerify(r);
    expect(out.exitCode).toBe(1);
    expect(out.stdout).toMatch(/^BROKEN at seq 5: SEQUENCE_BROKEN — /);
  });

  it('rewriting a record and recomputing its hash: CHAIN_LINK_BROKEN at the next record', async () => {
    const app = await tampered(async (db) => writeRecord(db, rehashed({ ...(await readRecord(db, 5)), reason: 'OWNER', principal: 'svc_someone_else' })));
    const r = await exportOf(app);
    await app.close();
    expect(verdict(r)).toEqual({ ok: false, code: 'CHAIN_LINK_BROKEN', seq: 6 });
  });

  it('rewriting the last record with its hash: HEAD_MISMATCH against the head signed for it', async () => {
    const app = await tampered(async (db) => writeRecord(db, rehashed({ ...(await readRecord(db, n)), time: 0 })));
    const upToIt = await exportOf(app, n);
    const whole = await exportOf(app);
    await app.close();
    expect(verdict(upToIt)).toEqual({ ok: false, code: 'HEAD_MISMATCH', seq: n });
    // The record appended after it still links to the original hash.
    expect(verdict(whole)).toEqual({ ok: false, code: 'CHAIN_LINK_BROKEN', seq: n + 1 });
  });

  it('deleting the tail but not the head: TRUNCATED where the records stop', async () => {
    const app = await tampered(async (db) => {
      for (let seq = 16; seq <= n; seq++) await db.del(auditKey(seq));
    });
    const r = await exportOf(app, n);
    await app.close();
    expect(verdict(r)).toEqual({ ok: false, code: 'TRUNCATED', seq: 16 });
  });

  it('a consistent rollback (tail deleted, head rewound) passes the chain alone but not an earlier anchor — CLI --anchor', async () => {
    const app = await tampered(async (db) => {
      const last = await readRecord(db, 15);
      for (let seq = 16; seq <= n; seq++) await db.del(auditKey(seq));
      await db.put(HEAD_KEY, JSON.stringify({ v: 1, seq: 15, hash: last.hash }));
    });
    const r = await exportOf(app);
    await app.close();
    expect(verdict(r)).toMatchObject({ ok: true, to: 16 }); // the export's read is record 16 again
    expect(verdict(r, [anchor])).toEqual({ ok: false, code: 'ROLLED_BACK', seq: 17 });
    const out = await cliVerify(r, '--anchor', `${anchor.seq}:${Buffer.from(anchor.hash).toString('hex')}`);
    expect(out.exitCode).toBe(1);
    expect(out.stdout).toMatch(/^BROKEN at seq 17: ROLLED_BACK — /);
    const plain = await cliVerify(r);
    expect(plain.exitCode).toBe(0);
    expect(plain.stdout).toMatch(/^VERIFIED: records 1\.\.16, head seq 16 signed at /);
  });

  it('a log longer than one export page: pages link and verify; a rewrite at a page boundary is named', async () => {
    // 2100 more records, appended by the appliance's own store so they chain like real ones.
    const grow = async (storeDir: string): Promise<void> => {
      const store = await openLevelStore(storeDir);
      try {
        const entry = { time: 1, principal: creds.principalId, operation: 'personal_sign' as const, keyId: 'key_bulk', requestDigest: new Uint8Array(32), decision: 'allow' as const, reason: 'OWNER' as const };
        for (const size of [1000, 1000, 100]) await store.commit(Array.from({ length: size }, () => appendAudit(entry)));
      } finally {
        await store.close();
      }
    };
    const total = n + 2100;
    const pages: bigint[] = [];
    const app = await tampered(async () => undefined, grow);
    const client = createOpenKeyClient({ baseUrl: app.connectUrl, credentials: creds });
    const counting: typeof client.audit = {
      ...client.audit,
      exportAudit: (req, opts) => {
        pages.push(BigInt(req.from ?? 0n));
        return client.audit.exportAudit(req, opts);
      },
    };
    const r = await exportAuditLog(counting, { from: 1 });
    await app.close();
    expect(pages).toEqual([1n, 1001n, 2001n]);
    expect(r.warnings).toEqual([]);
    expect(verdict(r)).toMatchObject({ ok: true, from: 1, to: total + pages.length }); // each page's read is recorded

    const broken = await tampered(async (db) => writeRecord(db, rehashed({ ...(await readRecord(db, 1000)), reason: 'GRANT' })), grow);
    const b = await exportOf(broken);
    await broken.close();
    expect(b.warnings).toEqual(['page starting at seq 1001 does not link to the record before it']);
    expect(verdict(b)).toEqual({ ok: false, code: 'CHAIN_LINK_BROKEN', seq: 1001 });
  });
});
