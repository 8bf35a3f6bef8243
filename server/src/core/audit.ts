// The tamper-evident audit log (DESIGN "Audit"; issue 4 item 4). Every decision is a record chained
// to its predecessor by SHA-256 and appended by an `appendAudit` Change in the same atomic commit as
// the state it changes. The identity key signs chain heads; an export carries records plus a signed
// head, and `verifyAuditExport` (pure) names the first broken link with a stable code and its seq.

import { CanonicalWriter } from '../../../proto/protocol/encoding.ts';
import { equalBytes, fromHex, toHex } from './bytes.ts';
import { ed25519Verify } from './crypto/ed25519.ts';
import { sha256 } from './crypto/sha256.ts';
import { OpenKeyError, isOpenKeyError, type ErrorCode } from './errors.ts';
import { deniedAs, denialError, type PolicyDecision, type PolicyReason, type SignOperation } from './policy.ts';
import type { AuditDecision, AuditEntry, AuditHead, AuditRecord, Change, Clock, Store } from './ports.ts';

export const AUDIT_HASH_LENGTH = 32;
/** prevHash of record 1, and the hash of the empty log's head. */
export const AUDIT_GENESIS_HASH: Uint8Array = new Uint8Array(AUDIT_HASH_LENGTH);
/** Most records in one export (and one store read); page through longer ranges. */
export const MAX_AUDIT_EXPORT = 1000;
export const AUDIT_EXPORT_VERSION = 1;
const RECORD_TAG = 'openkey-audit-record-v1';
/** A record that stands for several identical decisions (count ≥ 2) is hashed under its own tag. */
const COUNTED_RECORD_TAG = 'openkey-audit-record-v2';
/** Most decisions one record may stand for (the wire field is a uint32). */
export const MAX_AUDIT_COUNT = 2 ** 32 - 1;
const HEAD_TAG = 'openkey-audit-head-v1';

/** Operations the appliance audits. Extend here as features land. */
export type AuditOperation = SignOperation | 'seal_key' | 'grant' | 'revoke' | 'set_owner_rule' | 'register_passkey' | 'login' | 'logout' | 'open_session' | 'close_session' | 'delegate' | 'delegation_grant' | 'delegation_revoke' | 'audit_export' | 'create_principal';
/** Why a registration was allowed: the key registered itself, an administrator did, or the configuration. */
export type RegistrationReason = 'SELF_REGISTERED' | 'ADMIN' | 'CONFIGURED';
/** Reason codes: the policy engine's, a domain error code for decisions made elsewhere, or why a registration was allowed. */
export type AuditReason = PolicyReason | ErrorCode | RegistrationReason;

// ---- Record fields ------------------------------------------------------------------------------

const OPERATION_RE = /^[a-z][a-z0-9_]{0,63}$/;
const REASON_RE = /^[A-Z][A-Z0-9_]{0,63}$/;
const MAX_AUDIT_ID_LENGTH = 512;
/** With the `u` flag a surrogate pair is one code point, so this matches lone surrogates only. */
const LONE_SURROGATE_RE = /\p{Surrogate}/u;

export const isAuditOperationName = (v: unknown): v is string => typeof v === 'string' && OPERATION_RE.test(v);
export const isAuditReasonCode = (v: unknown): v is string => typeof v === 'string' && REASON_RE.test(v);
export const isAuditDecision = (v: unknown): v is AuditDecision => v === 'allow' || v === 'deny';
/** '' (none) or a well-formed string of at most 512 UTF-16 units, so its UTF-8 bytes identify it. */
export function isAuditId(v: unknown): v is string {
  // A lone surrogate would be written as U+FFFD, so the stored id would not be the one checked.
  return typeof v === 'string' && v.length <= MAX_AUDIT_ID_LENGTH && !LONE_SURROGATE_RE.test(v);
}
export const isAuditTime = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
export const isAuditSeq = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 1;
export const isAuditDigest = (v: unknown): v is Uint8Array => v instanceof Uint8Array && (v.length === 0 || v.length === 32);
export const isAuditHash = (v: unknown): v is Uint8Array => v instanceof Uint8Array && v.length === AUDIT_HASH_LENGTH;
/** A record's `count`: absent (one decision) or 2 … MAX_AUDIT_COUNT. 1 is written by leaving it out. */
export const isAuditCount = (v: unknown): v is number | undefined => v === undefined || (typeof v === 'number' && Number.isSafeInteger(v) && v >= 2 && v <= MAX_AUDIT_COUNT);

/** A checked private copy of an entry; INTERNAL for anything a record may not hold. */
export function checkAuditEntry(e: AuditEntry): AuditEntry {
  const fail = (field: string): never => {
    throw new OpenKeyError('INTERNAL', `invalid audit entry: ${field}`);
  };
  if (typeof e !== 'object' || e === null) return fail('not an object');
  if (!isAuditTime(e.time)) fail('time');
  if (!isAuditId(e.principal)) fail('principal');
  if (!isAuditOperationName(e.operation)) fail('operation');
  if (!isAuditId(e.keyId)) fail('keyId');
  if (!isAuditDigest(e.requestDigest)) fail('requestDigest');
  if (!isAuditDecision(e.decision)) fail('decision');
  if (!isAuditReasonCode(e.reason)) fail('reason');
  const count = e.count === 1 ? undefined : e.count; // one decision is written without a count
  if (!isAuditCount(count)) fail('count');
  return {
    time: e.time,
    principal: e.principal,
    operation: e.operation,
    keyId: e.keyId,
    requestDigest: Uint8Array.from(e.requestDigest),
    decision: e.decision,
    reason: e.reason,
    ...(count === undefined ? {} : { count }),
  };
}

// ---- Chaining -----------------------------------------------------------------------------------

/**
 * SHA-256(canonical(seq, time, principal, operation, keyId, requestDigest, decision, reason) ‖
 * prevHash) under the v1 tag; a record of several decisions (count ≥ 2) appends count and uses the
 * v2 tag, so no v1 record's fields and count can be read as another record's.
 */
export function auditRecordHash(r: Omit<AuditRecord, 'hash'>): Uint8Array {
  const counted = r.count !== undefined && r.count !== 1;
  const w = new CanonicalWriter(counted ? COUNTED_RECORD_TAG : RECORD_TAG)
    .u64(r.seq)
    .u64(r.time)
    .string(r.principal)
    .string(r.operation)
    .string(r.keyId)
    .bytes(r.requestDigest)
    .string(r.decision)
    .string(r.reason);
  const canonical = (counted ? w.u64(r.count as number) : w).finish();
  return sha256(canonical, r.prevHash);
}

/** The record that follows `head` (used by the store inside its atomic section). */
export function chainAuditRecord(entry: AuditEntry, head: AuditHead): AuditRecord {
  const e = checkAuditEntry(entry);
  if (!Number.isSafeInteger(head.seq + 1) || head.seq < 0 || !isAuditHash(head.hash)) throw new OpenKeyError('INTERNAL', 'invalid audit head');
  const unhashed = { ...e, seq: head.seq + 1, prevHash: Uint8Array.from(head.hash) };
  return { ...unhashed, hash: auditRecordHash(unhashed) };
}

/** An audit entry with the appliance's typed operation and reason. */
export interface AuditInput {
  readonly time: number;
  readonly principal: string;
  readonly operation: AuditOperation;
  readonly keyId: string;
  readonly requestDigest: Uint8Array;
  readonly decision: AuditDecision;
  readonly reason: AuditReason;
  /** Identical decisions this entry stands for; absent means 1 (see `mergeIdentical`). */
  readonly count?: number;
}

/** The Change that appends `entry`; commit it with the state the decision changes. */
export function appendAudit(entry: AuditInput): Change {
  return { kind: 'appendAudit', entry: checkAuditEntry(entry) };
}

/**
 * The audit Change for a denial. Commit it on its own (with the request's nonce, so a replay of the
 * denied request is refused as a replay): a denied request's other changes must not be written.
 */
export function denialAudit(entry: Omit<AuditInput, 'decision' | 'reason'>, reason: AuditReason): Change {
  return appendAudit({ ...entry, decision: 'deny', reason });
}

// ---- Committing decisions -----------------------------------------------------------------------

/** One decided item (a Sign request, or one item of a batch) and what its record says. */
export interface AuditedItem {
  readonly decision: PolicyDecision;
  readonly principal: string;
  readonly operation: AuditOperation;
  readonly keyId: string;
  readonly requestDigest: Uint8Array;
}

export interface AuditedCommit {
  readonly time: number;
  /** At least one. A batch is all-or-nothing: one denied item denies every item. */
  readonly items: readonly AuditedItem[];
  /** Written whatever the decision: the stamp's nonce. */
  readonly always?: readonly Change[];
  /** Written only if every item is allowed, with the counters and the records (e.g. createKey). */
  readonly ifAllowed?: readonly Change[];
  /** Aborted while the commit is still queued: it is dropped (store/group commit), nothing written. */
  readonly signal?: AbortSignal | undefined;
}

/**
 * Writes a decision durably, then returns (allowed) or throws the client-facing denial error.
 * Allowed: ONE commit of [always, ifAllowed, counter updates, allow records]; if a rate limit or cap
 * ran out meanwhile (RATE_LIMITED / CAP_EXCEEDED from inside the atomic section) nothing of it is
 * written and the request is denied for that reason instead. Denied: ONE commit of [always, deny
 * records]. Either way the record is durable before this settles, so respond only after it.
 * `store` may be any `commit` with the Store's semantics (e.g. a group-commit queue).
 */
export async function commitAudited(store: Pick<Store, 'commit'>, c: AuditedCommit): Promise<void> {
  if (c.items.length === 0) throw new OpenKeyError('INTERNAL', 'commitAudited: no items');
  const records = (decisions: readonly PolicyDecision[]): Change[] =>
    mergeIdentical(
      c.items.map((item, i) => {
        const d = decisions[i] ?? item.decision;
        return { time: c.time, principal: item.principal, operation: item.operation, keyId: item.keyId, requestDigest: item.requestDigest, decision: d.decision, reason: d.reason };
      }),
    ).map(appendAudit);
  const denyAll = async (reasonFor: (d: PolicyDecision) => PolicyReason, cause: PolicyDecision): Promise<never> => {
    const decisions = c.items.map((item) => deniedAs(item.decision, reasonFor(item.decision)));
    await store.commit([...(c.always ?? []), ...records(decisions)], { signal: c.signal });
    throw denialError(cause);
  };

  const denied = c.items.find((item) => item.decision.decision === 'deny');
  if (denied !== undefined) {
    return denyAll((d) => (d.decision === 'deny' ? d.reason : 'BATCH_ITEM_DENIED'), denied.decision);
  }
  try {
    await store.commit([...(c.always ?? []), ...(c.ifAllowed ?? []), ...c.items.flatMap((item) => item.decision.counterUpdates), ...records([])], { signal: c.signal });
  } catch (e) {
    if (isOpenKeyError(e) && (e.code === 'RATE_LIMITED' || e.code === 'CAP_EXCEEDED')) {
      const reason: PolicyReason = e.code;
      const first = c.items[0] as AuditedItem;
      return denyAll(() => reason, deniedAs(first.decision, reason));
    }
    throw e;
  }
}

/**
 * Identical entries as one entry with their count, in order of first appearance. The items of a
 * batch share principal, time and request digest, so a batch that signs with one key is one record
 * (the log says "allowed ×64" once instead of 64 times, and the commit writes one record, not 64);
 * entries that differ in anything keep records of their own.
 */
export function mergeIdentical(entries: readonly AuditInput[]): AuditInput[] {
  // A linear scan of the groups so far: a batch has one or a few (64 items at most), and comparing
  // fields costs less than building a key for every item.
  const groups: { entry: AuditInput; count: number }[] = [];
  for (const e of entries) {
    const group = groups.find((g) => sameDecision(g.entry, e));
    if (group === undefined) groups.push({ entry: e, count: e.count ?? 1 });
    else group.count += e.count ?? 1;
  }
  return groups.map(({ entry, count }) => (count === (entry.count ?? 1) ? entry : { ...entry, count }));
}

/** Every field but the count is the same. */
function sameDecision(a: AuditInput, b: AuditInput): boolean {
  return (
    a.time === b.time &&
    a.principal === b.principal &&
    a.operation === b.operation &&
    a.keyId === b.keyId &&
    a.decision === b.decision &&
    a.reason === b.reason &&
    (a.requestDigest === b.requestDigest || equalBytes(a.requestDigest, b.requestDigest))
  );
}

// ---- Signed heads and exports -------------------------------------------------------------------

/**
 * The identity key's statement "my log holds `logSeq` records, and its chain up to record `seq` ends
 * in `hash`" at `time`. For the current head, seq = logSeq.
 */
export interface SignedAuditHead {
  readonly seq: number;
  readonly hash: Uint8Array;
  readonly logSeq: number;
  readonly time: number;
  /** Ed25519 over `auditHeadSigningInput`. */
  readonly signature: Uint8Array;
}

export function auditHeadSigningInput(h: Omit<SignedAuditHead, 'signature'>): Uint8Array {
  return new CanonicalWriter(HEAD_TAG).u64(h.seq).bytes(h.hash).u64(h.logSeq).u64(h.time).finish();
}

/** Records [from, head.seq] and the signed head that proves them. */
export interface AuditExport {
  readonly version: number;
  readonly from: number;
  readonly records: readonly AuditRecord[];
  readonly head: SignedAuditHead;
}

export interface AuditLogOptions {
  /** Reads, and `commit` for the records of reads themselves. */
  readonly store: Pick<Store, 'getAuditHead' | 'readAudit' | 'commit'>;
  readonly clock: Clock;
  /** The appliance identity key's Ed25519 signature (e.g. `(b) => identity.sign(b)`). */
  readonly sign: (message: Uint8Array) => Uint8Array;
}

export class AuditLog {
  constructor(private readonly o: AuditLogOptions) {}

  /** Records that `auth` read the log (with its stamp's nonce), before the read is served. */
  async recordRead(auth: { readonly principal: { readonly id: string }; readonly nonceChanges: readonly Change[]; readonly requestDigest: Uint8Array }): Promise<void> {
    const entry = { time: this.o.clock.now(), principal: auth.principal.id, operation: 'audit_export' as const, keyId: '', requestDigest: auth.requestDigest };
    await this.o.store.commit([...auth.nonceChanges, appendAudit({ ...entry, decision: 'allow', reason: 'OWNER' })]);
  }

  /** The current chain head, signed. */
  async signedHead(): Promise<SignedAuditHead> {
    const head = await this.o.store.getAuditHead();
    return this.#sign(head.seq, head.hash, head.seq);
  }

  /**
   * Records [from, to] (to defaults to the head; at most MAX_AUDIT_EXPORT) as stored, with a signed
   * head for `to`. The head's hash comes from the chain itself, not from record `to`: the stored head
   * when `to` is the head, else record to+1's prevHash. Tampering is reported by the verifier, so a
   * damaged log can still be exported to find out where.
   */
  async export(from: number, to?: number): Promise<AuditExport> {
    const head = await this.o.store.getAuditHead();
    const end = to ?? Math.min(head.seq, from + MAX_AUDIT_EXPORT - 1);
    if (!isAuditSeq(from)) throw new OpenKeyError('MALFORMED_REQUEST', 'audit export: from must be ≥ 1');
    if (!Number.isSafeInteger(end) || end < from - 1 || end > head.seq) throw new OpenKeyError('MALFORMED_REQUEST', 'audit export: to must be in from-1..head');
    if (end - from + 1 > MAX_AUDIT_EXPORT) throw new OpenKeyError('PAYLOAD_TOO_LARGE', `audit export of more than ${MAX_AUDIT_EXPORT} records`);
    const records = end >= from ? await this.o.store.readAudit(from, end) : [];
    let hash: Uint8Array;
    if (end === head.seq) {
      hash = head.hash;
    } else if (end === 0) {
      hash = AUDIT_GENESIS_HASH;
    } else {
      const [next] = await this.o.store.readAudit(end + 1, end + 1);
      const last = records.at(-1);
      // A missing successor is damage outside the range; fall back to the last record's own hash.
      hash = next?.seq === end + 1 ? next.prevHash : last?.seq === end ? last.hash : AUDIT_GENESIS_HASH;
    }
    return { version: AUDIT_EXPORT_VERSION, from, records, head: this.#sign(end, hash, head.seq) };
  }

  #sign(seq: number, hash: Uint8Array, logSeq: number): SignedAuditHead {
    const unsigned = { seq, hash: Uint8Array.from(hash), logSeq, time: this.o.clock.now() };
    return { ...unsigned, signature: this.o.sign(auditHeadSigningInput(unsigned)) };
  }
}

// ---- Verification -------------------------------------------------------------------------------

/** Why an export does not verify. Stable API. */
export const AUDIT_BREAK_CODES = [
  'MALFORMED_EXPORT', // not an export of this version, or a field of the wrong shape (seq: where)
  'HEAD_SIGNATURE_INVALID', // the head is not signed by the given identity key
  'SEQUENCE_BROKEN', // a record is missing, duplicated or out of order at this seq (delete, reorder)
  'RECORD_HASH_MISMATCH', // the record's contents do not give its hash (edit)
  'CHAIN_LINK_BROKEN', // the record's prevHash is not its predecessor's hash (or genesis)
  'TRUNCATED', // the records end before the signed head's seq
  'HEAD_MISMATCH', // the last record's hash is not the signed head's hash
  'ANCHOR_MISMATCH', // a trusted earlier head disagrees with the chain at that seq
  'ROLLED_BACK', // the log is shorter than a trusted earlier head
] as const;
export type AuditBreakCode = (typeof AUDIT_BREAK_CODES)[number];

export type AuditVerification =
  | { readonly ok: true; readonly from: number; readonly to: number; readonly hash: Uint8Array; readonly logSeq: number; readonly time: number }
  | { readonly ok: false; readonly code: AuditBreakCode; readonly seq: number };

export interface AuditVerifyOptions {
  /**
   * Heads the verifier already trusts (from earlier verified exports or signed heads). They catch a
   * host that rewrites or truncates the log consistently, which the chain alone cannot.
   */
  readonly anchors?: readonly AuditHead[];
}

/**
 * Checks an export against the identity public key (32-byte Ed25519, pinned from attestation):
 * the head signature, then every record in order (seq, own hash, link to its predecessor, anchors),
 * then the end (truncation, head hash) and rollback below an anchor. Pure: no I/O, never throws.
 */
export function verifyAuditExport(exp: AuditExport, identityPublicKey: Uint8Array, options: AuditVerifyOptions = {}): AuditVerification {
  const broken = (code: AuditBreakCode, seq: number): AuditVerification => ({ ok: false, code, seq });
  if (typeof exp !== 'object' || exp === null || exp.version !== AUDIT_EXPORT_VERSION || !isAuditSeq(exp.from) || !Array.isArray(exp.records)) {
    return broken('MALFORMED_EXPORT', 0);
  }
  const h = exp.head;
  if (typeof h !== 'object' || h === null || !isAuditTime(h.seq) || !isAuditHash(h.hash) || !isAuditTime(h.logSeq) || !isAuditTime(h.time) || !(h.signature instanceof Uint8Array)) {
    return broken('MALFORMED_EXPORT', 0);
  }
  if (!ed25519Verify(identityPublicKey, auditHeadSigningInput(h), h.signature)) return broken('HEAD_SIGNATURE_INVALID', h.seq);
  if (h.seq > h.logSeq || exp.from > h.seq + 1) return broken('MALFORMED_EXPORT', h.seq);
  const anchors = new Map<number, Uint8Array>();
  for (const a of options.anchors ?? []) {
    if (typeof a !== 'object' || a === null || !isAuditTime(a.seq) || !isAuditHash(a.hash)) return broken('MALFORMED_EXPORT', 0);
    anchors.set(a.seq, a.hash);
  }

  // The hash record `from` must link to: genesis, or a trusted anchor just before the range.
  let prev: Uint8Array | undefined = exp.from === 1 ? AUDIT_GENESIS_HASH : anchors.get(exp.from - 1);
  const expected = h.seq - exp.from + 1;
  for (let i = 0; i < exp.records.length; i++) {
    const seq = exp.from + i;
    const r: unknown = exp.records[i];
    if (!isRecordShape(r)) return broken('MALFORMED_EXPORT', seq);
    if (r.seq !== seq) return broken('SEQUENCE_BROKEN', seq);
    if (!equalBytes(auditRecordHash(r), r.hash)) return broken('RECORD_HASH_MISMATCH', seq);
    if (prev !== undefined && !equalBytes(r.prevHash, prev)) return broken(i === 0 && seq > 1 ? 'ANCHOR_MISMATCH' : 'CHAIN_LINK_BROKEN', seq);
    const anchor = anchors.get(seq);
    if (anchor !== undefined && !equalBytes(anchor, r.hash)) return broken('ANCHOR_MISMATCH', seq);
    prev = r.hash;
  }
  if (exp.records.length < expected) return broken('TRUNCATED', exp.from + exp.records.length);
  if (exp.records.length > expected) return broken('SEQUENCE_BROKEN', h.seq + 1);
  // An empty range links the head to what precedes it.
  const last = exp.records.length > 0 ? prev : exp.from === 1 ? AUDIT_GENESIS_HASH : anchors.get(exp.from - 1);
  if (last !== undefined && !equalBytes(last, h.hash)) return broken('HEAD_MISMATCH', h.seq);
  const headAnchor = anchors.get(h.seq);
  if (headAnchor !== undefined && !equalBytes(headAnchor, h.hash)) return broken('ANCHOR_MISMATCH', h.seq);
  for (const seq of anchors.keys()) if (seq > h.logSeq) return broken('ROLLED_BACK', h.logSeq + 1);
  return { ok: true, from: exp.from, to: h.seq, hash: Uint8Array.from(h.hash), logSeq: h.logSeq, time: h.time };
}

function isRecordShape(r: unknown): r is AuditRecord {
  if (typeof r !== 'object' || r === null) return false;
  const o = r as Readonly<Record<string, unknown>>;
  return (
    isAuditSeq(o['seq']) &&
    isAuditTime(o['time']) &&
    isAuditId(o['principal']) &&
    isAuditOperationName(o['operation']) &&
    isAuditId(o['keyId']) &&
    isAuditDigest(o['requestDigest']) &&
    isAuditDecision(o['decision']) &&
    isAuditReasonCode(o['reason']) &&
    isAuditHash(o['prevHash']) &&
    isAuditHash(o['hash']) &&
    isAuditCount(o['count'])
  );
}

// ---- JSON form (RPC payloads, CLI files) --------------------------------------------------------

/** An export as JSON text; bytes as lowercase hex. */
export function encodeAuditExport(exp: AuditExport): string {
  return JSON.stringify({
    version: exp.version,
    from: exp.from,
    // `count` appears only on records of several decisions, as the store and the wire hold them.
    records: exp.records.map((r) => ({ ...r, requestDigest: toHex(r.requestDigest), prevHash: toHex(r.prevHash), hash: toHex(r.hash) })),
    head: { ...exp.head, hash: toHex(exp.head.hash), signature: toHex(exp.head.signature) },
  });
}

/**
 * Parses `encodeAuditExport` output into an AuditExport for `verifyAuditExport`. Throws
 * MALFORMED_REQUEST for text that is not such JSON; field values are left for the verifier to judge.
 */
export function decodeAuditExport(text: string): AuditExport {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new OpenKeyError('MALFORMED_REQUEST', 'audit export is not JSON');
  }
  const o = obj(v, 'export');
  const records = o['records'];
  if (!Array.isArray(records)) throw new OpenKeyError('MALFORMED_REQUEST', 'audit export: records');
  const head = obj(o['head'], 'head');
  return {
    version: num(o['version'], 'version'),
    from: num(o['from'], 'from'),
    records: records.map((x: unknown, i: number): AuditRecord => {
      const r = obj(x, `records[${i}]`);
      return {
        seq: num(r['seq'], 'seq'),
        time: num(r['time'], 'time'),
        principal: str(r['principal'], 'principal'),
        operation: str(r['operation'], 'operation'),
        keyId: str(r['keyId'], 'keyId'),
        requestDigest: hex(r['requestDigest'], 'requestDigest'),
        decision: str(r['decision'], 'decision') as AuditDecision, // judged by the verifier
        reason: str(r['reason'], 'reason'),
        prevHash: hex(r['prevHash'], 'prevHash'),
        hash: hex(r['hash'], 'hash'),
        ...(r['count'] === undefined ? {} : { count: num(r['count'], 'count') }), // judged by the verifier
      };
    }),
    head: {
      seq: num(head['seq'], 'head.seq'),
      hash: hex(head['hash'], 'head.hash'),
      logSeq: num(head['logSeq'], 'head.logSeq'),
      time: num(head['time'], 'head.time'),
      signature: hex(head['signature'], 'head.signature'),
    },
  };
}

function obj(v: unknown, label: string): Readonly<Record<string, unknown>> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new OpenKeyError('MALFORMED_REQUEST', `audit export: ${label}`);
  return v as Readonly<Record<string, unknown>>;
}
function num(v: unknown, label: string): number {
  if (typeof v !== 'number') throw new OpenKeyError('MALFORMED_REQUEST', `audit export: ${label}`);
  return v;
}
function str(v: unknown, label: string): string {
  if (typeof v !== 'string') throw new OpenKeyError('MALFORMED_REQUEST', `audit export: ${label}`);
  return v;
}
function hex(v: unknown, label: string): Uint8Array {
  return fromHex(str(v, label), 'MALFORMED_REQUEST', `audit export: ${label}`);
}
