// Per-key policy, deny by default, evaluated in pure code before any key is unsealed (DESIGN
// "Policy"; issue 4 item 3). A key's owner and its grants (principal × operations × constraints ×
// limits) decide; the answer is allow/deny with a stable reason code for the audit log, plus the
// counter changes the caller commits atomically with the audit record and the nonce.

import { equalBytes } from './bytes.ts';
import { OpenKeyError } from './errors.ts';
import type { Change, KeyAlgorithm, PrincipalRole } from './ports.ts';

// ---- Model --------------------------------------------------------------------------------------

export const SIGN_OPERATIONS = ['personal_sign', 'eip712', 'raw_digest', 'ed25519'] as const;
export type SignOperation = (typeof SIGN_OPERATIONS)[number];

/** Who can hold a grant: a person (any of their sessions), a service, or one session. */
export const PRINCIPAL_KINDS = ['person', 'service', 'session'] as const;
export type PrincipalKind = (typeof PRINCIPAL_KINDS)[number];

export interface PrincipalRef {
  readonly kind: PrincipalKind;
  readonly id: string;
}

/** Allowlists on the fields the EIP-712 hasher returns (core/crypto/eip712.ts). Omitted = any. */
export interface Eip712Constraints {
  readonly chainIds?: readonly bigint[];
  /** 0x-prefixed addresses; compared lowercase. */
  readonly verifyingContracts?: readonly string[];
  readonly primaryTypes?: readonly string[];
}

/** Token bucket: bursts of up to `capacity`, refilled at `refillTokens` per `refillPeriodMs`. */
export interface RateLimit {
  readonly capacity: number;
  readonly refillTokens: number;
  readonly refillPeriodMs: number;
}

/** At most `limit` signatures per fixed window of `windowMs`, aligned to the Unix epoch (UTC days). */
export interface UsageCap {
  readonly limit: number;
  readonly windowMs: number;
}

/** What a principal may do with a key, and within which limits. */
export interface UsageRule {
  readonly operations: readonly SignOperation[];
  readonly eip712?: Eip712Constraints;
  /** Largest payload: message bytes (personal_sign, ed25519) or typed-data JSON length (eip712). */
  readonly maxMessageBytes?: number;
  readonly rateLimit?: RateLimit;
  readonly caps?: readonly UsageCap[];
  /** Valid from this instant (inclusive, ms since the epoch). */
  readonly notBefore?: number;
  /** Valid until this instant (exclusive). */
  readonly notAfter?: number;
  /** Every use needs a passkey approval by the key's owner of the exact request. */
  readonly requireApproval?: boolean;
}

export interface KeyGrant extends UsageRule {
  /** Unique within the key's policy; names the grant's counters and appears in audit context. */
  readonly id: string;
  readonly principal: PrincipalRef;
}

/**
 * A key's policy. The owner may use every operation its key's algorithm supports (raw digests only
 * where the key enables them) without limits, unless `owner` is set: then the owner is held to that
 * rule like a grantee (e.g. to require its own passkey approval, or cap its own use). Grants to the
 * owner's own id are ignored; anyone else needs a matching grant.
 */
export interface KeyPolicy {
  readonly owner?: UsageRule;
  readonly grants: readonly KeyGrant[];
}

/** The key facts policy needs (a KeyRecord fits). */
export interface PolicyKey {
  readonly keyId: string;
  readonly owner: string;
  readonly algorithm: KeyAlgorithm;
  readonly rawDigestSigning: boolean;
}

/** The subset of a parsed EIP-712 document policy reads (`createEip712Hasher().hash(json)`). */
export interface Eip712Fields {
  readonly primaryType: string;
  readonly domain: { readonly chainId?: bigint; readonly verifyingContract?: string };
}

/** A passkey approval the caller has already verified (WebAuthn challenge = the request digest). */
export interface VerifiedApproval {
  /** The principal whose passkey approved. Must be the key's owner. */
  readonly approver: string;
  readonly requestDigest: Uint8Array;
}

export interface PolicyRequest {
  readonly principal: PrincipalRef;
  /** The session a person's request came through; grants to that one session match it too. */
  readonly session?: string;
  /** undefined when no key has this id: denied like a key the principal may not use. */
  readonly key: PolicyKey | undefined;
  /** undefined = no policy: owner only. */
  readonly policy: KeyPolicy | undefined;
  readonly operation: SignOperation;
  /** Payload size the `maxMessageBytes` constraint applies to (see UsageRule). */
  readonly messageBytes: number;
  /** Required for eip712. */
  readonly eip712?: Eip712Fields;
  /** Digest of the canonical request, the one a passkey approval must cover. */
  readonly requestDigest: Uint8Array;
  readonly approval?: VerifiedApproval;
  readonly now: number;
  /** Signatures this decision covers, charged to rate limits and caps. Default 1. */
  readonly count?: number;
}

/** Stable reason codes, recorded in the audit log. Closed set: add here, never reuse or rename. */
export const POLICY_REASONS = [
  'OWNER', // allowed: the key's owner, no owner rule
  'OWNER_RULE', // allowed: the key's owner within its own rule
  'GRANT', // allowed by a grant
  'KEY_UNKNOWN', // no key with this id
  'POLICY_INVALID', // the stored policy fails validation: nothing is allowed
  'NOT_GRANTED', // neither the owner nor the holder of any grant on the key
  'OPERATION_NOT_GRANTED', // no grant (or the owner rule) covers this operation
  'ALGORITHM_MISMATCH', // the key's algorithm cannot perform this operation
  'RAW_DIGEST_DISABLED', // raw-digest signing is off for this key
  'NOT_YET_VALID', // before the grant's notBefore
  'EXPIRED', // at or after the grant's notAfter
  'MESSAGE_TOO_LARGE', // payload above the grant's maxMessageBytes
  'EIP712_FIELDS_MISSING', // eip712 without the parsed document fields (a caller bug)
  'EIP712_CHAIN_ID_NOT_ALLOWED',
  'EIP712_CONTRACT_NOT_ALLOWED',
  'EIP712_PRIMARY_TYPE_NOT_ALLOWED',
  'APPROVAL_REQUIRED', // the rule needs a passkey approval and none came
  'APPROVAL_MISMATCH', // an approval came, but for another request or from someone not the owner
  'RATE_LIMITED', // token bucket empty (at commit, or a request larger than the bucket)
  'CAP_EXCEEDED', // window cap used up (at commit, or a request larger than the cap)
  'BATCH_ITEM_DENIED', // allowed on its own, but another item of the same batch was denied
] as const;
export type PolicyReason = (typeof POLICY_REASONS)[number];

/** Who the principal is to the key; decides which error a denial shows the client. */
export type Standing = 'owner' | 'grantee' | 'none';

export interface PolicyDecision {
  readonly decision: 'allow' | 'deny';
  readonly reason: PolicyReason;
  readonly standing: Standing;
  /** The grant that allowed (or, denied, came closest); '' for the owner or none. */
  readonly grantId: string;
  /** Allowed only: rate-limit and cap changes to commit with the audit record and the nonce. */
  readonly counterUpdates: readonly Change[];
}

/** Principal kind of a registered principal (principals.ts). Admins are services with more rights. */
export function principalKindOf(role: PrincipalRole): PrincipalKind {
  switch (role) {
    case 'admin':
    case 'service':
      return 'service';
    case 'person':
      return 'person';
  }
}

// ---- Validation (at the edge: grant RPCs, stored policies) -------------------------------------

export const POLICY_LIMITS = Object.freeze({
  maxGrants: 64,
  maxAllowlist: 64,
  maxCaps: 4,
  maxPrincipalIdLength: 128,
  maxPrimaryTypeLength: 128,
  maxRateCapacity: 1_000_000,
  maxRatePeriodMs: 86_400_000,
  maxCapLimit: 1_000_000_000,
  minCapWindowMs: 1_000,
  maxCapWindowMs: 366 * 86_400_000,
  maxSignaturesPerDecision: 1_000,
});

const GRANT_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
const PRINCIPAL_ID_RE = /^[\x21-\x7e]+$/;
const ADDRESS_RE = /^0x[0-9a-fA-F]{40}$/;
const UINT256_MAX = (1n << 256n) - 1n;

/** Policies that passed `checkKeyPolicy` (frozen copies), so evaluation need not check them again. */
const checked = new WeakSet<KeyPolicy>();

/**
 * A validated, normalized (addresses lowercase), deeply frozen copy of `policy`; throws
 * MALFORMED_REQUEST (or PAYLOAD_TOO_LARGE for a list over its bound). Values are checked at run
 * time, so a policy parsed from JSON and cast is safe to pass.
 */
export function checkKeyPolicy(policy: KeyPolicy): KeyPolicy {
  if (checked.has(policy)) return policy;
  const p = record(policy, 'policy');
  const grantsIn = p['grants'];
  if (!Array.isArray(grantsIn)) bad('policy.grants must be an array');
  if (grantsIn.length > POLICY_LIMITS.maxGrants) throw new OpenKeyError('PAYLOAD_TOO_LARGE', 'policy.grants');
  const ids = new Set<string>();
  const grants = grantsIn.map((g: unknown, i: number): KeyGrant => {
    const label = `policy.grants[${i}]`;
    const o = record(g, label);
    const id = o['id'];
    if (typeof id !== 'string' || !GRANT_ID_RE.test(id)) bad(`${label}.id`);
    if (ids.has(id)) bad(`${label}.id is not unique`);
    ids.add(id);
    const pr = record(o['principal'], `${label}.principal`);
    const kind = PRINCIPAL_KINDS.find((k) => k === pr['kind']);
    if (kind === undefined) bad(`${label}.principal.kind`);
    const pid = pr['id'];
    if (typeof pid !== 'string' || pid.length > POLICY_LIMITS.maxPrincipalIdLength || !PRINCIPAL_ID_RE.test(pid)) bad(`${label}.principal.id`);
    return Object.freeze({ id, principal: Object.freeze({ kind, id: pid }), ...checkRule(o, label) });
  });
  const out: KeyPolicy = Object.freeze(
    p['owner'] === undefined ? { grants: Object.freeze(grants) } : { owner: Object.freeze(checkRule(record(p['owner'], 'policy.owner'), 'policy.owner')), grants: Object.freeze(grants) },
  );
  checked.add(out);
  return out;
}

function checkRule(o: Readonly<Record<string, unknown>>, label: string): UsageRule {
  const opsIn = o['operations'];
  if (!Array.isArray(opsIn) || opsIn.length === 0) bad(`${label}.operations must be a non-empty array`);
  const operations = opsIn.map((op: unknown) => {
    const hit = SIGN_OPERATIONS.find((s) => s === op);
    if (hit === undefined) bad(`${label}.operations`);
    return hit;
  });
  if (new Set(operations).size !== operations.length) bad(`${label}.operations has duplicates`);
  const rule: { -readonly [K in keyof UsageRule]: UsageRule[K] } = { operations: Object.freeze(operations) };

  if (o['eip712'] !== undefined) {
    const e = record(o['eip712'], `${label}.eip712`);
    const c: { -readonly [K in keyof Eip712Constraints]: Eip712Constraints[K] } = {};
    if (e['chainIds'] !== undefined) {
      c.chainIds = allowlist(e['chainIds'], `${label}.eip712.chainIds`, (v) => (typeof v === 'bigint' && v >= 0n && v <= UINT256_MAX ? v : undefined));
    }
    if (e['verifyingContracts'] !== undefined) {
      c.verifyingContracts = allowlist(e['verifyingContracts'], `${label}.eip712.verifyingContracts`, (v) =>
        typeof v === 'string' && ADDRESS_RE.test(v) ? v.toLowerCase() : undefined,
      );
    }
    if (e['primaryTypes'] !== undefined) {
      c.primaryTypes = allowlist(e['primaryTypes'], `${label}.eip712.primaryTypes`, (v) =>
        typeof v === 'string' && v.length > 0 && v.length <= POLICY_LIMITS.maxPrimaryTypeLength ? v : undefined,
      );
    }
    rule.eip712 = Object.freeze(c);
  }
  if (o['maxMessageBytes'] !== undefined) rule.maxMessageBytes = int(o['maxMessageBytes'], `${label}.maxMessageBytes`, 1, Number.MAX_SAFE_INTEGER);
  if (o['rateLimit'] !== undefined) {
    const r = record(o['rateLimit'], `${label}.rateLimit`);
    rule.rateLimit = Object.freeze({
      capacity: int(r['capacity'], `${label}.rateLimit.capacity`, 1, POLICY_LIMITS.maxRateCapacity),
      refillTokens: int(r['refillTokens'], `${label}.rateLimit.refillTokens`, 1, POLICY_LIMITS.maxRateCapacity),
      refillPeriodMs: int(r['refillPeriodMs'], `${label}.rateLimit.refillPeriodMs`, 1, POLICY_LIMITS.maxRatePeriodMs),
    });
  }
  if (o['caps'] !== undefined) {
    const capsIn = o['caps'];
    if (!Array.isArray(capsIn)) bad(`${label}.caps must be an array`);
    if (capsIn.length > POLICY_LIMITS.maxCaps) throw new OpenKeyError('PAYLOAD_TOO_LARGE', `${label}.caps`);
    const caps = capsIn.map((cap: unknown, i: number) => {
      const c = record(cap, `${label}.caps[${i}]`);
      return Object.freeze({
        limit: int(c['limit'], `${label}.caps[${i}].limit`, 1, POLICY_LIMITS.maxCapLimit),
        windowMs: int(c['windowMs'], `${label}.caps[${i}].windowMs`, POLICY_LIMITS.minCapWindowMs, POLICY_LIMITS.maxCapWindowMs),
      });
    });
    // Two caps with one window would share a counter.
    if (new Set(caps.map((c) => c.windowMs)).size !== caps.length) bad(`${label}.caps: one cap per window length`);
    rule.caps = Object.freeze(caps);
  }
  if (o['notBefore'] !== undefined) rule.notBefore = int(o['notBefore'], `${label}.notBefore`, 0, Number.MAX_SAFE_INTEGER);
  if (o['notAfter'] !== undefined) rule.notAfter = int(o['notAfter'], `${label}.notAfter`, 0, Number.MAX_SAFE_INTEGER);
  if (rule.notBefore !== undefined && rule.notAfter !== undefined && rule.notBefore >= rule.notAfter) bad(`${label}: notBefore must precede notAfter`);
  if (o['requireApproval'] !== undefined) {
    if (typeof o['requireApproval'] !== 'boolean') bad(`${label}.requireApproval`);
    rule.requireApproval = o['requireApproval'];
  }
  return rule;
}

function record(v: unknown, label: string): Readonly<Record<string, unknown>> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(`${label} must be an object`);
  return v as Readonly<Record<string, unknown>>;
}

function int(v: unknown, label: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) bad(`${label} must be an integer in ${min}..${max}`);
  return v;
}

/** A non-empty, bounded, frozen list; an empty allowlist would silently deny everything. */
function allowlist<T>(v: unknown, label: string, item: (x: unknown) => T | undefined): readonly T[] {
  if (!Array.isArray(v) || v.length === 0) bad(`${label} must be a non-empty array (omit it to allow any)`);
  if (v.length > POLICY_LIMITS.maxAllowlist) throw new OpenKeyError('PAYLOAD_TOO_LARGE', label);
  return Object.freeze(
    v.map((x: unknown) => {
      const out = item(x);
      if (out === undefined) bad(label);
      return out;
    }),
  );
}

function bad(detail: string): never {
  throw new OpenKeyError('MALFORMED_REQUEST', detail);
}

// ---- Evaluation ---------------------------------------------------------------------------------

const EMPTY_POLICY: KeyPolicy = checkKeyPolicy({ grants: [] });
const IMPLICIT_OWNER_RULE: UsageRule = Object.freeze({ operations: SIGN_OPERATIONS });

/** Which stage of the checks a denial came from: among several grants, the furthest one is reported. */
const RANK: Partial<Record<PolicyReason, number>> = {
  OPERATION_NOT_GRANTED: 1,
  ALGORITHM_MISMATCH: 2,
  RAW_DIGEST_DISABLED: 2,
  NOT_YET_VALID: 3,
  EXPIRED: 3,
  MESSAGE_TOO_LARGE: 4,
  EIP712_FIELDS_MISSING: 4,
  EIP712_CHAIN_ID_NOT_ALLOWED: 4,
  EIP712_CONTRACT_NOT_ALLOWED: 4,
  EIP712_PRIMARY_TYPE_NOT_ALLOWED: 4,
  APPROVAL_REQUIRED: 5,
  APPROVAL_MISMATCH: 5,
  RATE_LIMITED: 6,
  CAP_EXCEEDED: 6,
};

/**
 * Decides one request. Pure and synchronous: no I/O, the time is `req.now`. Rate limits and caps
 * are only *emitted* here (`counterUpdates`); they are enforced inside the store's atomic commit, so
 * concurrent requests and replicas cannot overspend them. Malformed inputs (a caller bug) throw
 * INTERNAL; an invalid policy denies.
 */
export function evaluatePolicy(req: PolicyRequest): PolicyDecision {
  const count = req.count ?? 1;
  if (!Number.isSafeInteger(count) || count < 1 || count > POLICY_LIMITS.maxSignaturesPerDecision) throw new OpenKeyError('INTERNAL', 'policy: bad count');
  if (!Number.isSafeInteger(req.now) || req.now < 0) throw new OpenKeyError('INTERNAL', 'policy: bad now');
  if (!Number.isSafeInteger(req.messageBytes) || req.messageBytes < 0) throw new OpenKeyError('INTERNAL', 'policy: bad messageBytes');
  if (!SIGN_OPERATIONS.includes(req.operation)) throw new OpenKeyError('INTERNAL', 'policy: unknown operation');

  const key = req.key;
  if (key === undefined) return deny('KEY_UNKNOWN', 'none', '');
  let policy: KeyPolicy;
  try {
    policy = checkKeyPolicy(req.policy ?? EMPTY_POLICY);
  } catch {
    // Deny by default: a policy we cannot read allows nothing (the reason says why, for the audit).
    return deny('POLICY_INVALID', 'none', '');
  }

  if (req.principal.id === key.owner) {
    const rule = policy.owner ?? IMPLICIT_OWNER_RULE;
    const reason = checkUse(rule, key, req, count);
    if (reason !== undefined) return deny(reason, 'owner', '');
    return allow(policy.owner === undefined ? 'OWNER' : 'OWNER_RULE', 'owner', '', countersFor(rule, key, req, '', count));
  }

  let closest: { reason: PolicyReason; grantId: string } | undefined;
  for (const g of policy.grants) {
    const matches =
      (g.principal.kind === req.principal.kind && g.principal.id === req.principal.id) ||
      (g.principal.kind === 'session' && req.session !== undefined && g.principal.id === req.session);
    if (!matches) continue;
    const reason = checkUse(g, key, req, count);
    if (reason === undefined) return allow('GRANT', 'grantee', g.id, countersFor(g, key, req, g.id, count));
    if (closest === undefined || (RANK[reason] ?? 0) > (RANK[closest.reason] ?? 0)) closest = { reason, grantId: g.id };
  }
  return closest === undefined ? deny('NOT_GRANTED', 'none', '') : deny(closest.reason, 'grantee', closest.grantId);
}

/** The first rule check the request fails, or undefined when the rule allows it. */
function checkUse(rule: UsageRule, key: PolicyKey, req: PolicyRequest, count: number): PolicyReason | undefined {
  const op = req.operation;
  if (!rule.operations.includes(op)) return 'OPERATION_NOT_GRANTED';
  if ((op === 'ed25519') !== (key.algorithm === 'ed25519')) return 'ALGORITHM_MISMATCH';
  // Raw digests are a separate capability: the key must enable them as well as the rule.
  if (op === 'raw_digest' && key.rawDigestSigning !== true) return 'RAW_DIGEST_DISABLED';
  // Comparisons are written so that anything unexpected (NaN) denies.
  if (rule.notBefore !== undefined && !(req.now >= rule.notBefore)) return 'NOT_YET_VALID';
  if (rule.notAfter !== undefined && !(req.now < rule.notAfter)) return 'EXPIRED';
  if (rule.maxMessageBytes !== undefined && !(req.messageBytes <= rule.maxMessageBytes)) return 'MESSAGE_TOO_LARGE';
  if (op === 'eip712' && rule.eip712 !== undefined) {
    const doc = req.eip712;
    if (doc === undefined) return 'EIP712_FIELDS_MISSING';
    const { chainIds, verifyingContracts, primaryTypes } = rule.eip712;
    const chainId = doc.domain.chainId;
    if (chainIds !== undefined && (chainId === undefined || !chainIds.includes(chainId))) return 'EIP712_CHAIN_ID_NOT_ALLOWED';
    const contract = doc.domain.verifyingContract?.toLowerCase();
    if (verifyingContracts !== undefined && (contract === undefined || !verifyingContracts.includes(contract))) return 'EIP712_CONTRACT_NOT_ALLOWED';
    if (primaryTypes !== undefined && !primaryTypes.includes(doc.primaryType)) return 'EIP712_PRIMARY_TYPE_NOT_ALLOWED';
  }
  if (rule.requireApproval === true) {
    const a = req.approval;
    if (a === undefined) return 'APPROVAL_REQUIRED';
    if (a.approver !== key.owner || !equalBytes(a.requestDigest, req.requestDigest) || req.requestDigest.length !== 32) return 'APPROVAL_MISMATCH';
  }
  // A request larger than a whole bucket or cap can never pass; say so without a commit.
  if (rule.rateLimit !== undefined && count > rule.rateLimit.capacity) return 'RATE_LIMITED';
  if (rule.caps?.some((c) => count > c.limit) === true) return 'CAP_EXCEEDED';
  return undefined;
}

function countersFor(rule: UsageRule, key: PolicyKey, req: PolicyRequest, grantId: string, count: number): Change[] {
  const changes: Change[] = [];
  if (rule.rateLimit !== undefined) {
    changes.push({ kind: 'takeTokens', bucket: rateBucketId(key.keyId, req.principal, grantId), now: req.now, tokens: count, ...rule.rateLimit });
  }
  for (const cap of rule.caps ?? []) {
    changes.push({
      kind: 'incrementCounter',
      counter: capCounterId(key.keyId, req.principal, grantId, cap.windowMs),
      windowStart: req.now - (req.now % cap.windowMs),
      by: count,
      limit: cap.limit,
    });
  }
  return changes;
}

/** Store id of the token bucket of (key, principal, grant); grantId '' is the owner's rule. */
export function rateBucketId(keyId: string, principal: PrincipalRef, grantId: string): string {
  return JSON.stringify(['rate', keyId, principal.kind, principal.id, grantId]);
}

/** Store id of the cap counter of (key, principal, grant, window length). */
export function capCounterId(keyId: string, principal: PrincipalRef, grantId: string, windowMs: number): string {
  return JSON.stringify(['cap', keyId, principal.kind, principal.id, grantId, windowMs]);
}

function allow(reason: PolicyReason, standing: Standing, grantId: string, counterUpdates: Change[]): PolicyDecision {
  return Object.freeze({ decision: 'allow', reason, standing, grantId, counterUpdates: Object.freeze(counterUpdates) });
}

function deny(reason: PolicyReason, standing: Standing, grantId: string): PolicyDecision {
  return Object.freeze({ decision: 'deny', reason, standing, grantId, counterUpdates: Object.freeze([]) });
}

/** `d` turned into a denial for `reason` (a limit that ran out at commit, or a denied batch sibling). */
export function deniedAs(d: PolicyDecision, reason: PolicyReason): PolicyDecision {
  return deny(reason, d.standing, d.grantId);
}

// ---- What the client sees -----------------------------------------------------------------------

/**
 * The one error a denial shows the client. Anyone who is neither the owner nor holds a grant that
 * permits this exact request gets KEY_NOT_FOUND, the same as for a key that does not exist; the
 * specific reason goes only to the audit log. Rate limits, caps and missing approvals are told apart
 * (the caller can act on them), but only a principal whose grant permits the request reaches them.
 * The owner keeps today's answers (RAW_SIGNING_DISABLED, ALGORITHM_MISMATCH) or PERMISSION_DENIED.
 */
export function denialError(d: PolicyDecision): OpenKeyError {
  if (d.decision !== 'deny') throw new OpenKeyError('INTERNAL', 'denialError of an allowed decision');
  switch (d.reason) {
    case 'RATE_LIMITED':
    case 'CAP_EXCEEDED':
      return new OpenKeyError(d.reason);
    case 'APPROVAL_REQUIRED':
    case 'APPROVAL_MISMATCH':
      return new OpenKeyError('APPROVAL_REQUIRED');
    default:
      break;
  }
  if (d.standing === 'owner') {
    if (d.reason === 'RAW_DIGEST_DISABLED') return new OpenKeyError('RAW_SIGNING_DISABLED');
    if (d.reason === 'ALGORITHM_MISMATCH') return new OpenKeyError('ALGORITHM_MISMATCH');
    return new OpenKeyError('PERMISSION_DENIED');
  }
  return new OpenKeyError('KEY_NOT_FOUND');
}
