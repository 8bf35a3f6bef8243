// Versioned encoding of stored records (format 1: UTF-8 JSON, bytes as canonical base64). The host
// can edit the database files, so decoding parses into unknown, checks every field with the same
// rules as encoding, and throws a clean OpenKeyError: SEALED_KEY_CORRUPT for a key record (it is
// the sealed key's container), INTERNAL for any other record. Encoding invalid records is INTERNAL.

import {
  isAuditCount,
  isAuditDecision,
  isAuditDigest,
  isAuditHash,
  isAuditId,
  isAuditOperationName,
  isAuditReasonCode,
  isAuditSeq,
} from '../core/audit.ts';
import { OpenKeyError, type ErrorCode } from '../core/errors.ts';
import type {
  AuditHead,
  AuditRecord,
  KeyAlgorithm,
  KeyRecord,
  PrincipalAlgorithm,
  PrincipalRecord,
  PrincipalRole,
  StoredDoc,
  TokenBucketState,
  WindowCounter,
} from '../core/ports.ts';

export const RECORD_FORMAT = 1;
/** Bounds on stored fields (UTF-16 code units / bytes). The domain validates tighter rules first. */
export const MAX_ID_LENGTH = 512;
export const MAX_TEXT_LENGTH = 4096;
export const MAX_SEALED_LENGTH = 4096;

const PRINCIPAL_ROLES: readonly PrincipalRole[] = ['admin', 'service'];
const PRINCIPAL_ALGORITHMS: readonly PrincipalAlgorithm[] = ['ed25519', 'p256'];
const KEY_ALGORITHMS: readonly KeyAlgorithm[] = ['secp256k1', 'ed25519'];
const PRINCIPAL_FIELDS = ['v', 'id', 'role', 'algorithm', 'publicKey', 'name', 'createdAt'] as const;
const KEY_FIELDS = ['v', 'keyId', 'owner', 'algorithm', 'publicKey', 'label', 'rawDigestSigning', 'createdAt', 'sealed'] as const;
const NONCE_FIELDS = ['v', 'expiresAt'] as const;
const COUNTER_FIELDS = ['v', 'windowStart', 'count'] as const;
const BUCKET_FIELDS = ['v', 'level', 'at', 'capacity', 'refillTokens', 'refillPeriodMs'] as const;
const AUDIT_FIELDS = ['v', 'seq', 'time', 'principal', 'operation', 'keyId', 'requestDigest', 'decision', 'reason', 'prevHash', 'hash'] as const;
/** A record of several identical decisions also holds their count (core/audit.ts `mergeIdentical`). */
const AUDIT_OPTIONAL = ['count'] as const;
const AUDIT_HEAD_FIELDS = ['v', 'seq', 'hash'] as const;
/** Token-bucket levels are tokens × refillPeriodMs; keep every product well inside safe integers. */
export const MAX_BUCKET_UNITS = 2 ** 50;

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** A record's fields, each still to be checked (a typed record from the domain, or parsed JSON). */
type Unchecked<T> = { readonly [K in keyof T]?: unknown };
type Fail = (detail: string) => never;
const failWith =
  (code: ErrorCode, what: string): Fail =>
  (detail) => {
    throw new OpenKeyError(code, `${what}: ${detail}`);
  };

/** A non-empty, well-formed (no lone surrogates) id, so its UTF-8 bytes identify it uniquely. */
export function isStorableId(s: unknown): s is string {
  return typeof s === 'string' && s.length > 0 && s.length <= MAX_ID_LENGTH && STRICT_UTF8.decode(Buffer.from(s, 'utf8')) === s;
}

export function isTimestamp(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

// ---- principals ---------------------------------------------------------------------------------

export function encodePrincipal(p: PrincipalRecord): Uint8Array {
  const r = checkPrincipal(p, failWith('INTERNAL', 'refusing to store invalid principal'));
  return json({ v: RECORD_FORMAT, id: r.id, role: r.role, algorithm: r.algorithm, publicKey: b64(r.publicKey), name: r.name, createdAt: r.createdAt });
}

/** `expectedId` is the id the storage key names; a record stored under another id is corrupt. */
export function decodePrincipal(bytes: Uint8Array, expectedId: string): PrincipalRecord {
  const fail = failWith('INTERNAL', 'corrupt principal record');
  const o = parseObject(bytes, PRINCIPAL_FIELDS, fail);
  const r = checkPrincipal({ ...o, publicKey: unb64(o['publicKey'], fail) }, fail);
  if (r.id !== expectedId) fail('stored under another id');
  return r;
}

function checkPrincipal(v: Unchecked<PrincipalRecord>, fail: Fail): PrincipalRecord {
  const algorithm = oneOf(v['algorithm'], PRINCIPAL_ALGORITHMS, 'algorithm', fail);
  const publicKey = publicKeyFor(algorithm, v['publicKey'], fail);
  return {
    id: id(v['id'], 'id', fail),
    role: oneOf(v['role'], PRINCIPAL_ROLES, 'role', fail),
    algorithm,
    publicKey,
    name: textField(v['name'], 'name', fail),
    createdAt: timestamp(v['createdAt'], 'createdAt', fail),
  };
}

// ---- keys ---------------------------------------------------------------------------------------

export function encodeKey(k: KeyRecord): Uint8Array {
  const r = checkKey(k, failWith('INTERNAL', 'refusing to store invalid key record'));
  return json({
    v: RECORD_FORMAT,
    keyId: r.keyId,
    owner: r.owner,
    algorithm: r.algorithm,
    publicKey: b64(r.publicKey),
    label: r.label,
    rawDigestSigning: r.rawDigestSigning,
    createdAt: r.createdAt,
    sealed: b64(r.sealed),
  });
}

/** `expectedKeyId` is the id the storage key names; a record moved under another id is corrupt. */
export function decodeKey(bytes: Uint8Array, expectedKeyId: string): KeyRecord {
  const fail = failWith('SEALED_KEY_CORRUPT', 'corrupt key record');
  const o = parseObject(bytes, KEY_FIELDS, fail);
  const r = checkKey({ ...o, publicKey: unb64(o['publicKey'], fail), sealed: unb64(o['sealed'], fail) }, fail);
  if (r.keyId !== expectedKeyId) fail('stored under another key id');
  return r;
}

function checkKey(v: Unchecked<KeyRecord>, fail: Fail): KeyRecord {
  const algorithm = oneOf(v['algorithm'], KEY_ALGORITHMS, 'algorithm', fail);
  const publicKey = publicKeyFor(algorithm, v['publicKey'], fail);
  const sealed = bytes(v['sealed'], 'sealed', fail);
  if (sealed.length === 0 || sealed.length > MAX_SEALED_LENGTH) fail('sealed blob length');
  const raw = v['rawDigestSigning'];
  if (typeof raw !== 'boolean') fail('rawDigestSigning is not a boolean');
  return {
    keyId: id(v['keyId'], 'keyId', fail),
    owner: id(v['owner'], 'owner', fail),
    algorithm,
    publicKey,
    label: textField(v['label'], 'label', fail),
    rawDigestSigning: raw,
    createdAt: timestamp(v['createdAt'], 'createdAt', fail),
    sealed,
  };
}

// ---- consumed nonces ----------------------------------------------------------------------------

export function encodeNonce(expiresAt: number): Uint8Array {
  if (!isTimestamp(expiresAt)) throw new OpenKeyError('INTERNAL', 'nonce expiry is not a timestamp');
  return json({ v: RECORD_FORMAT, expiresAt });
}

export function decodeNonce(bytes: Uint8Array): { readonly expiresAt: number } {
  const fail = failWith('INTERNAL', 'corrupt nonce record');
  const o = parseObject(bytes, NONCE_FIELDS, fail);
  return { expiresAt: timestamp(o['expiresAt'], 'expiresAt', fail) };
}

// ---- usage counters -----------------------------------------------------------------------------

export function isCount(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

export function encodeCounter(c: WindowCounter): Uint8Array {
  const r = checkCounter(c, failWith('INTERNAL', 'refusing to store invalid counter'));
  return json({ v: RECORD_FORMAT, windowStart: r.windowStart, count: r.count });
}

export function decodeCounter(bytes: Uint8Array): WindowCounter {
  const fail = failWith('INTERNAL', 'corrupt counter record');
  return checkCounter(parseObject(bytes, COUNTER_FIELDS, fail), fail);
}

function checkCounter(v: Unchecked<WindowCounter>, fail: Fail): WindowCounter {
  const count = v['count'];
  if (!isCount(count)) return fail('count is not a non-negative safe integer');
  return { windowStart: timestamp(v['windowStart'], 'windowStart', fail), count };
}

/** The parameters a bucket may have; also checked for every `takeTokens` change. */
export function isBucketParams(capacity: unknown, refillTokens: unknown, refillPeriodMs: unknown): boolean {
  return (
    isCount(capacity) &&
    capacity >= 1 &&
    isCount(refillTokens) &&
    refillTokens >= 1 &&
    refillTokens <= MAX_BUCKET_UNITS &&
    isCount(refillPeriodMs) &&
    refillPeriodMs >= 1 &&
    capacity * refillPeriodMs <= MAX_BUCKET_UNITS
  );
}

export function encodeBucket(b: TokenBucketState): Uint8Array {
  const r = checkBucket(b, failWith('INTERNAL', 'refusing to store invalid token bucket'));
  return json({ v: RECORD_FORMAT, level: r.level, at: r.at, capacity: r.capacity, refillTokens: r.refillTokens, refillPeriodMs: r.refillPeriodMs });
}

export function decodeBucket(bytes: Uint8Array): TokenBucketState {
  const fail = failWith('INTERNAL', 'corrupt token bucket record');
  return checkBucket(parseObject(bytes, BUCKET_FIELDS, fail), fail);
}

function checkBucket(v: Unchecked<TokenBucketState>, fail: Fail): TokenBucketState {
  const { capacity, refillTokens, refillPeriodMs, level } = v;
  if (!isBucketParams(capacity, refillTokens, refillPeriodMs)) return fail('bucket parameters out of range');
  const c = capacity as number;
  const p = refillPeriodMs as number;
  if (!isCount(level) || level > c * p) return fail('level out of range');
  return { level, at: timestamp(v['at'], 'at', fail), capacity: c, refillTokens: refillTokens as number, refillPeriodMs: p };
}

// ---- audit chain --------------------------------------------------------------------------------

export function encodeAuditRecord(r: AuditRecord): Uint8Array {
  const c = checkAuditRecord(r, failWith('INTERNAL', 'refusing to store invalid audit record'));
  return json({
    v: RECORD_FORMAT,
    seq: c.seq,
    time: c.time,
    principal: c.principal,
    operation: c.operation,
    keyId: c.keyId,
    requestDigest: b64(c.requestDigest),
    decision: c.decision,
    reason: c.reason,
    prevHash: b64(c.prevHash),
    hash: b64(c.hash),
    ...(c.count === undefined ? {} : { count: c.count }),
  });
}

/**
 * A structurally valid record, as stored. Its seq is NOT compared with the storage key and its hash
 * is NOT recomputed: an export hands records to the chain verifier (core/audit.ts), which names
 * the seq where a moved, edited or missing record breaks the chain.
 */
export function decodeAuditRecord(bytes: Uint8Array): AuditRecord {
  const fail = failWith('INTERNAL', 'corrupt audit record');
  const o = parseObject(bytes, AUDIT_FIELDS, fail, AUDIT_OPTIONAL);
  return checkAuditRecord(
    { ...o, requestDigest: unb64(o['requestDigest'], fail), prevHash: unb64(o['prevHash'], fail), hash: unb64(o['hash'], fail) },
    fail,
  );
}

function checkAuditRecord(v: Unchecked<AuditRecord>, fail: Fail): AuditRecord {
  const { seq, principal, operation, keyId, requestDigest, decision, reason, prevHash, hash, count } = v;
  if (!isAuditSeq(seq)) return fail('seq');
  if (!isAuditId(principal)) return fail('principal');
  if (!isAuditOperationName(operation)) return fail('operation');
  if (!isAuditId(keyId)) return fail('keyId');
  if (!isAuditDigest(requestDigest)) return fail('requestDigest');
  if (!isAuditDecision(decision)) return fail('decision');
  if (!isAuditReasonCode(reason)) return fail('reason');
  if (!isAuditHash(prevHash) || !isAuditHash(hash)) return fail('hash length');
  if (!isAuditCount(count)) return fail('count');
  return {
    seq,
    time: timestamp(v['time'], 'time', fail),
    principal,
    operation,
    keyId,
    requestDigest: Uint8Array.from(requestDigest),
    decision,
    reason,
    prevHash: Uint8Array.from(prevHash),
    hash: Uint8Array.from(hash),
    ...(count === undefined ? {} : { count }),
  };
}

export function encodeAuditHead(h: AuditHead): Uint8Array {
  const fail = failWith('INTERNAL', 'refusing to store invalid audit head');
  if (!isAuditSeq(h.seq)) fail('seq');
  if (!isAuditHash(h.hash)) fail('hash');
  return json({ v: RECORD_FORMAT, seq: h.seq, hash: b64(h.hash) });
}

export function decodeAuditHead(bytes: Uint8Array): AuditHead {
  const fail = failWith('INTERNAL', 'corrupt audit head');
  const o = parseObject(bytes, AUDIT_HEAD_FIELDS, fail);
  const seq = o['seq'];
  const hash = unb64(o['hash'], fail);
  if (!isAuditSeq(seq)) return fail('seq');
  if (!isAuditHash(hash)) return fail('hash');
  return { seq, hash };
}

// ---- documents ----------------------------------------------------------------------------------

const DOC_FIELDS = ['v', 'version', 'value'] as const;
const DOC_OPTIONAL = ['expiresAt'] as const;
/** Largest document value: documents are small records (a policy with 64 grants fits easily). */
export const MAX_DOC_BYTES = 256 * 1024;
const DOC_SPACE_RE = /^[a-z][a-z0-9-]{0,31}$/;

export function isDocSpace(s: unknown): s is string {
  return typeof s === 'string' && DOC_SPACE_RE.test(s);
}

export function isDocVersion(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 1;
}

export function encodeDoc(d: StoredDoc): Uint8Array {
  const fail = failWith('INTERNAL', 'refusing to store invalid document');
  if (!isDocVersion(d.version)) fail('version');
  if (!(d.value instanceof Uint8Array) || d.value.length > MAX_DOC_BYTES) fail('value');
  if (d.expiresAt !== undefined && !isTimestamp(d.expiresAt)) fail('expiresAt');
  const value = b64(d.value);
  return json(d.expiresAt === undefined ? { v: RECORD_FORMAT, version: d.version, value } : { v: RECORD_FORMAT, version: d.version, expiresAt: d.expiresAt, value });
}

export function decodeDoc(bytes: Uint8Array): StoredDoc {
  const fail = failWith('INTERNAL', 'corrupt document');
  const o = parseObject(bytes, DOC_FIELDS, fail, DOC_OPTIONAL);
  const version = o['version'];
  if (!isDocVersion(version)) return fail('version');
  const value = unb64(o['value'], fail);
  if (value.length > MAX_DOC_BYTES) return fail('value');
  const expiresAt = o['expiresAt'];
  if (expiresAt === undefined) return { value, version };
  if (!isTimestamp(expiresAt)) return fail('expiresAt');
  return { value, version, expiresAt };
}

// ---- field checks -------------------------------------------------------------------------------

/** UTF-8 JSON object with exactly `fields` and `v` = RECORD_FORMAT. */
/** A stored JSON object of this format with exactly `fields`, plus any of `optional`, and no other. */
function parseObject(raw: Uint8Array, fields: readonly string[], fail: Fail, optional: readonly string[] = []): Readonly<Record<string, unknown>> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(STRICT_UTF8.decode(raw));
  } catch {
    // The parser's message would only echo the garbage; the code and a label say enough.
    return fail('not UTF-8 JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return fail('not an object');
  const o = parsed as Readonly<Record<string, unknown>>;
  if (o['v'] !== RECORD_FORMAT) return fail('unknown record format');
  const keys = Object.keys(o);
  const extra = optional.filter((f) => Object.hasOwn(o, f)).length;
  if (keys.length !== fields.length + extra || !fields.every((f) => Object.hasOwn(o, f))) return fail('unexpected fields');
  return o;
}

function id(v: unknown, label: string, fail: Fail): string {
  if (!isStorableId(v)) return fail(`${label} is not a non-empty well-formed id of at most ${MAX_ID_LENGTH} characters`);
  return v;
}

function textField(v: unknown, label: string, fail: Fail): string {
  if (typeof v !== 'string' || v.length > MAX_TEXT_LENGTH) return fail(`${label} is not a string of at most ${MAX_TEXT_LENGTH} characters`);
  return v;
}

function timestamp(v: unknown, label: string, fail: Fail): number {
  if (!isTimestamp(v)) return fail(`${label} is not a non-negative safe integer`);
  return v;
}

function oneOf<T extends string>(v: unknown, allowed: readonly T[], label: string, fail: Fail): T {
  const hit = allowed.find((a) => a === v);
  if (hit === undefined) return fail(`${label} is not one of ${allowed.join(', ')}`);
  return hit;
}

/** Ed25519: 32 raw bytes. secp256k1 and P-256: SEC1, 33 bytes compressed (02/03) or 65 uncompressed (04). */
function publicKeyFor(algorithm: KeyAlgorithm | PrincipalAlgorithm, v: unknown, fail: Fail): Uint8Array {
  const pk = bytes(v, 'publicKey', fail);
  const ok =
    algorithm === 'ed25519'
      ? pk.length === 32
      : (pk.length === 33 && (pk[0] === 2 || pk[0] === 3)) || (pk.length === 65 && pk[0] === 4);
  if (!ok) fail(`publicKey is not a ${algorithm} encoding`);
  return pk;
}

/** A private copy, so neither the caller nor a later reader shares the buffer. */
function bytes(v: unknown, label: string, fail: Fail): Uint8Array {
  if (!(v instanceof Uint8Array)) return fail(`${label} is not bytes`);
  return Uint8Array.from(v);
}

function b64(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
}

/** Canonical base64 only: Node's decoder skips junk characters, which would hide tampering. */
function unb64(v: unknown, fail: Fail): Uint8Array {
  if (typeof v !== 'string' || !BASE64_RE.test(v)) return fail('bytes field is not canonical base64');
  const buf = Buffer.from(v, 'base64');
  if (buf.toString('base64') !== v) return fail('bytes field is not canonical base64');
  return new Uint8Array(buf);
}

function json(v: Readonly<Record<string, unknown>>): Uint8Array {
  return new Uint8Array(Buffer.from(JSON.stringify(v), 'utf8'));
}
