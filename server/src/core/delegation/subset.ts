// The subset check: may this delegate receive these capabilities for this long under this grant?
// Pure and total over checked inputs; every refusal is a specific OpenKeyError code, decided before
// anything is signed. Order: revoked, expired, delegate allowed, capabilities ⊆ grant (and ⊆ the
// matching rule's scope), lifetime within the grant's bounds.

import { OpenKeyError } from '../errors.ts';
import { caveatKeys, checkCapabilities, fromPermissions, withResources, type CapabilityEntry } from './capability.ts';
import { isPlainObject } from './jcs.ts';
import { parseDelegateDid, parseOwnerDid, resourceCovers, type DelegateDid, type OwnerDid } from './resource.ts';
import { MAX_TIME_MS } from './siwe.ts';
import type { DelegateRule, DelegationGrant } from './grant.ts';

export interface SubsetResult {
  readonly ok: boolean;
  /** Requested entries (or the uncovered caveat branches of them) no granted entry covers. */
  readonly missing: readonly CapabilityEntry[];
}

/**
 * `requested ⊆ granted`, entry by entry and caveat branch by caveat branch: a requested branch is
 * covered when some granted entry has a covering resource (resource.ts `resourceCovers`), the same
 * ability (no wildcards), and that exact branch (canonical JSON equality) among its caveats.
 * Caveats are opaque: `[{}]` (unconstrained) covers only `[{}]`, and a constrained grant covers only
 * its own branches — the appliance cannot know whether an unknown caveat narrows or widens.
 */
export function capabilitySubset(requested: readonly CapabilityEntry[], granted: readonly CapabilityEntry[]): SubsetResult {
  const grantedParsed = withResources(granted).map(({ entry, resource }) => ({ entry, resource, branches: new Set(caveatKeys(entry.caveats)) }));
  const missing: CapabilityEntry[] = [];
  for (const { entry, resource } of withResources(requested)) {
    const candidates = grantedParsed.filter((g) => g.entry.ability === entry.ability && resourceCovers(g.resource, resource));
    const keys = caveatKeys(entry.caveats);
    const uncovered = entry.caveats.filter((_, i) => !candidates.some((g) => g.branches.has(keys[i] as string)));
    if (uncovered.length > 0) missing.push({ resource: entry.resource, ability: entry.ability, caveats: uncovered });
  }
  return { ok: missing.length === 0, missing };
}

/**
 * The verdict of the project's attestation verifier on the delegate, produced by the caller after
 * verifying the delegate's TDX quote against the grant's policy and checking that the quote binds
 * `subjectDid`. The core only matches it against grant rules; it never sees a quote.
 */
export interface VerifiedDelegateAttestation {
  readonly policy: string;
  readonly subjectDid: string;
}

export interface DelegationRequest {
  readonly delegate: DelegateDid;
  readonly capabilities: readonly CapabilityEntry[];
  readonly lifetimeSeconds: number;
  /** Epoch milliseconds; the delegation is not valid before it. */
  readonly notBefore?: number;
  /** Carried into the SIWE `Request ID:` line. */
  readonly requestId?: string;
}

const REQUEST_FIELDS = ['delegate', 'capabilities', 'permissions', 'lifetimeSeconds', 'notBefore', 'requestId'];
const REQUEST_ID_RE = /^[A-Za-z0-9\-._~]{1,128}$/;

/**
 * Checks a delegation request from untrusted input, for a grant owned by `ownerDid`:
 * `{delegate, capabilities | permissions, lifetimeSeconds, notBefore?, requestId?}` where
 * `capabilities` is `[{resource, ability, caveats?}]` and `permissions` TinyCloud's
 * `[{service, space, path, actions, caveats?}]` (exactly one of the two).
 */
export function checkDelegationRequest(input: unknown, ownerDid: string): DelegationRequest {
  if (!isPlainObject(input)) throw new OpenKeyError('MALFORMED_REQUEST', 'delegation request is not an object');
  for (const k of Object.keys(input)) if (!REQUEST_FIELDS.includes(k)) throw new OpenKeyError('MALFORMED_REQUEST', `delegation request: unknown field ${k}`);
  const delegate = parseDelegateDid(input['delegate']);
  const hasCaps = input['capabilities'] !== undefined;
  const hasPerms = input['permissions'] !== undefined;
  if (hasCaps === hasPerms) throw new OpenKeyError(hasCaps ? 'MALFORMED_REQUEST' : 'MISSING_FIELD', 'give exactly one of capabilities, permissions');
  const capabilities = hasCaps ? checkCapabilities(input['capabilities']) : fromPermissions(parseOwnerDid(ownerDid).did, input['permissions']);
  const lifetimeSeconds = input['lifetimeSeconds'];
  if (lifetimeSeconds === undefined) throw new OpenKeyError('MISSING_FIELD', 'lifetimeSeconds');
  if (!Number.isSafeInteger(lifetimeSeconds) || (lifetimeSeconds as number) < 1) throw new OpenKeyError('MALFORMED_REQUEST', 'lifetimeSeconds must be a positive integer');
  const notBefore = input['notBefore'];
  if (notBefore !== undefined && (!Number.isSafeInteger(notBefore) || (notBefore as number) < 0 || (notBefore as number) > MAX_TIME_MS)) throw new OpenKeyError('MALFORMED_REQUEST', 'notBefore must be epoch milliseconds');
  const requestId = input['requestId'];
  if (requestId !== undefined && (typeof requestId !== 'string' || !REQUEST_ID_RE.test(requestId))) throw new OpenKeyError('MALFORMED_REQUEST', 'requestId');
  return {
    delegate,
    capabilities,
    lifetimeSeconds: lifetimeSeconds as number,
    ...(notBefore !== undefined ? { notBefore: notBefore as number } : {}),
    ...(requestId !== undefined ? { requestId } : {}),
  };
}

export interface AuthorizationContext {
  /** Epoch milliseconds (the injected clock). */
  readonly now: number;
  /** The authenticated service principal making the request, if any. */
  readonly callerPrincipalId?: string;
  /** The verifier's verdict on the delegate's attestation, if it presented one. */
  readonly attestation?: VerifiedDelegateAttestation;
}

/** A request the grant allows, with its times fixed: everything issue.ts needs to build and sign. */
export interface AuthorizedDelegation {
  readonly grantId: string;
  readonly owner: OwnerDid;
  readonly delegate: DelegateDid;
  readonly capabilities: readonly CapabilityEntry[];
  /** Epoch milliseconds. */
  readonly issuedAt: number;
  readonly expiresAt: number;
  readonly notBefore?: number;
  readonly requestId?: string;
}

function ruleMatches(rule: DelegateRule, delegate: DelegateDid, ctx: AuthorizationContext): boolean {
  switch (rule.kind) {
    case 'did':
      return rule.did === delegate.did;
    case 'attested':
      return ctx.attestation !== undefined && ctx.attestation.policy === rule.policy && ctx.attestation.subjectDid === delegate.did;
    case 'principal':
      return ctx.callerPrincipalId !== undefined && ctx.callerPrincipalId === rule.principalId;
  }
}

/**
 * Decides a checked request against a checked grant. Throws, in this order of precedence:
 * GRANT_REVOKED; GRANT_EXPIRED (now ≥ grant expiry); DELEGATE_NOT_ALLOWED (no rule matches the
 * delegate, its attestation or the caller); DELEGATION_NOT_SUBSET (a capability outside the grant,
 * or outside every matching rule's scope); LIFETIME_TOO_LONG (over the grant's maximum, or ending
 * after the grant); MALFORMED_REQUEST (notBefore not within [now, expiry)).
 */
export function authorizeDelegation(grant: DelegationGrant, request: DelegationRequest, ctx: AuthorizationContext): AuthorizedDelegation {
  const now = ctx.now;
  if (!Number.isSafeInteger(now) || now < 0) throw new OpenKeyError('INTERNAL', 'clock returned a bad time');
  if (grant.revoked) throw new OpenKeyError('GRANT_REVOKED', grant.id);
  if (now >= grant.expiresAt) throw new OpenKeyError('GRANT_EXPIRED', grant.id);
  const owner = parseOwnerDid(grant.owner);
  if (request.delegate.did === owner.did) throw new OpenKeyError('DELEGATE_NOT_ALLOWED', 'the owner cannot delegate to itself');
  const rules = grant.delegates.filter((r) => ruleMatches(r, request.delegate, ctx));
  if (rules.length === 0) throw new OpenKeyError('DELEGATE_NOT_ALLOWED', grant.id);
  if (!capabilitySubset(request.capabilities, grant.capabilities).ok) throw new OpenKeyError('DELEGATION_NOT_SUBSET', grant.id);
  if (!rules.some((r) => r.scope === undefined || capabilitySubset(request.capabilities, r.scope).ok)) throw new OpenKeyError('DELEGATION_NOT_SUBSET', `${grant.id}: outside the delegate's scope`);
  const lifetimeMs = request.lifetimeSeconds * 1000;
  const expiresAt = now + lifetimeMs;
  if (request.lifetimeSeconds > grant.maxLifetimeSeconds || expiresAt > grant.expiresAt) throw new OpenKeyError('LIFETIME_TOO_LONG', grant.id);
  if (request.notBefore !== undefined && (request.notBefore < now || request.notBefore >= expiresAt)) throw new OpenKeyError('MALFORMED_REQUEST', 'notBefore must lie within [now, expiry)');
  return {
    grantId: grant.id,
    owner,
    delegate: request.delegate,
    capabilities: request.capabilities,
    issuedAt: now,
    expiresAt,
    ...(request.notBefore !== undefined ? { notBefore: request.notBefore } : {}),
    ...(request.requestId !== undefined ? { requestId: request.requestId } : {}),
  };
}
