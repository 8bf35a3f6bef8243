// Grants: what an owner approved once — capabilities under the owner's own spaces, who may receive
// delegations of them (DIDs, an attestation policy, or a calling principal, each optionally scoped
// to a subset), the longest delegation lifetime, an expiry and a revoked flag — and the composition
// of a TinyCloud app manifest with backend manifests into one grant (the union, one approval).

import { OpenKeyError } from '../errors.ts';
import { isPrincipalId } from '../ids.ts';
import { canonicalizeEntries, checkCapabilities, expandActions, normalizeRootPath, resolveSpace, shortService, withResources, type CapabilityEntry } from './capability.ts';
import { isPlainObject } from './jcs.ts';
import { checkPath, formatResource, parseDelegateDid, parseOwnerDid } from './resource.ts';
import { MAX_TIME_MS } from './siwe.ts';
import { capabilitySubset } from './subset.ts';

/** No delegation may live longer than this, whatever a grant says (OpenKey caps /delegate at 30 d). */
export const MAX_DELEGATION_LIFETIME_SECONDS = 30 * 24 * 3600;
/** A grant's own lifetime bound. */
export const MAX_GRANT_LIFETIME_MS = 366 * 24 * 3600 * 1000;
/** TinyCloud's native-delegation default for `maxDelegationTtlSeconds`. */
export const DEFAULT_MAX_DELEGATION_LIFETIME_SECONDS = 3600;
export const MAX_DELEGATE_RULES = 32;
export const MAX_MANIFESTS = 16;
export const MAX_MANIFEST_PERMISSIONS = 64;

const GRANT_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
const POLICY_RE = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Who may receive delegations under a grant. `scope`, when present, narrows what that delegate may
 * receive to a subset of the grant's capabilities (e.g. a backend manifest's own permissions).
 * - `did`: exactly this DID.
 * - `attested`: any DID whose TDX attestation satisfied the verifier policy `policy` — the caller
 *   runs the verifier and passes its verdict as `VerifiedDelegateAttestation` (subset.ts).
 * - `principal`: any DID, when the request comes from this authenticated service principal (an app
 *   asking for a delegation to its own, ephemeral session key).
 */
export type DelegateRule =
  | { readonly kind: 'did'; readonly did: string; readonly scope?: readonly CapabilityEntry[] }
  | { readonly kind: 'attested'; readonly policy: string; readonly scope?: readonly CapabilityEntry[] }
  | { readonly kind: 'principal'; readonly principalId: string; readonly scope?: readonly CapabilityEntry[] };

export interface DelegationGrant {
  readonly id: string;
  /** The owner (root authority) DID; every capability lies in one of its spaces. */
  readonly owner: string;
  readonly capabilities: readonly CapabilityEntry[];
  readonly delegates: readonly DelegateRule[];
  /** Longest lifetime of one delegation issued under this grant. */
  readonly maxLifetimeSeconds: number;
  /** Epoch milliseconds. */
  readonly createdAt: number;
  /** Epoch milliseconds; no delegation is issued at or after it, and none outlives it. */
  readonly expiresAt: number;
  readonly revoked: boolean;
}

function exactMembers(v: Record<string, unknown>, allowed: readonly string[], label: string): void {
  for (const k of Object.keys(v)) if (!allowed.includes(k)) throw new OpenKeyError('MALFORMED_REQUEST', `${label}: unknown field ${k}`);
}

function epochMs(v: unknown, label: string): number {
  if (!Number.isSafeInteger(v) || (v as number) < 0 || (v as number) > MAX_TIME_MS) throw new OpenKeyError('MALFORMED_REQUEST', `${label} must be epoch milliseconds`);
  return v as number;
}

function checkRule(raw: unknown, owner: string, capabilities: readonly CapabilityEntry[]): DelegateRule {
  if (!isPlainObject(raw)) throw new OpenKeyError('MALFORMED_REQUEST', 'delegate rule is not an object');
  let scope: CapabilityEntry[] | undefined;
  if (raw['scope'] !== undefined) {
    scope = checkCapabilities(raw['scope'], 'delegate scope');
    if (!capabilitySubset(scope, capabilities).ok) throw new OpenKeyError('MALFORMED_REQUEST', 'a delegate scope must be a subset of the grant');
  }
  const scoped = scope === undefined ? {} : { scope };
  switch (raw['kind']) {
    case 'did': {
      exactMembers(raw, ['kind', 'did', 'scope'], 'delegate rule');
      const did = parseDelegateDid(raw['did']).did;
      if (did === owner) throw new OpenKeyError('MALFORMED_REQUEST', 'the owner cannot be its own delegate');
      return { kind: 'did', did, ...scoped };
    }
    case 'attested': {
      exactMembers(raw, ['kind', 'policy', 'scope'], 'delegate rule');
      const policy = raw['policy'];
      if (typeof policy !== 'string' || !POLICY_RE.test(policy)) throw new OpenKeyError('MALFORMED_REQUEST', 'attestation policy id');
      return { kind: 'attested', policy, ...scoped };
    }
    case 'principal': {
      exactMembers(raw, ['kind', 'principalId', 'scope'], 'delegate rule');
      const principalId = raw['principalId'];
      if (typeof principalId !== 'string' || !isPrincipalId(principalId)) throw new OpenKeyError('MALFORMED_REQUEST', 'principal id');
      return { kind: 'principal', principalId, ...scoped };
    }
    default:
      throw new OpenKeyError('MALFORMED_REQUEST', 'delegate rule kind');
  }
}

/**
 * Checks a grant from untrusted input or storage and returns it in canonical form. Every capability
 * must lie in one of the owner's spaces; there must be 1..MAX_DELEGATE_RULES delegate rules;
 * 1 ≤ maxLifetimeSeconds ≤ MAX_DELEGATION_LIFETIME_SECONDS; createdAt < expiresAt ≤ createdAt +
 * MAX_GRANT_LIFETIME_MS. Unknown fields are refused.
 */
export function checkGrant(input: unknown): DelegationGrant {
  if (!isPlainObject(input)) throw new OpenKeyError('MALFORMED_REQUEST', 'grant is not an object');
  exactMembers(input, ['id', 'owner', 'capabilities', 'delegates', 'maxLifetimeSeconds', 'createdAt', 'expiresAt', 'revoked'], 'grant');
  const id = input['id'];
  if (typeof id !== 'string' || !GRANT_ID_RE.test(id)) throw new OpenKeyError('MALFORMED_REQUEST', 'grant id');
  const owner = parseOwnerDid(input['owner']).did;
  const capabilities = checkCapabilities(input['capabilities'], 'grant capabilities');
  for (const { resource } of withResources(capabilities)) {
    if (resource.owner !== owner) throw new OpenKeyError('MALFORMED_REQUEST', 'a grant capability lies outside the owner’s spaces');
  }
  const rawRules = input['delegates'];
  if (!Array.isArray(rawRules) || rawRules.length === 0) throw new OpenKeyError('MISSING_FIELD', 'grant delegates');
  if (rawRules.length > MAX_DELEGATE_RULES) throw new OpenKeyError('PAYLOAD_TOO_LARGE', `more than ${MAX_DELEGATE_RULES} delegate rules`);
  const delegates = rawRules.map((r: unknown) => checkRule(r, owner, capabilities));
  const maxLifetimeSeconds = input['maxLifetimeSeconds'];
  if (!Number.isSafeInteger(maxLifetimeSeconds) || (maxLifetimeSeconds as number) < 1 || (maxLifetimeSeconds as number) > MAX_DELEGATION_LIFETIME_SECONDS) {
    throw new OpenKeyError('MALFORMED_REQUEST', `maxLifetimeSeconds must be 1..${MAX_DELEGATION_LIFETIME_SECONDS}`);
  }
  const createdAt = epochMs(input['createdAt'], 'createdAt');
  const expiresAt = epochMs(input['expiresAt'], 'expiresAt');
  if (expiresAt <= createdAt || expiresAt - createdAt > MAX_GRANT_LIFETIME_MS) throw new OpenKeyError('MALFORMED_REQUEST', 'grant expiry must follow creation, within the maximum grant lifetime');
  const revoked = input['revoked'];
  if (typeof revoked !== 'boolean') throw new OpenKeyError('MALFORMED_REQUEST', 'revoked must be a boolean');
  return { id, owner, capabilities, delegates, maxLifetimeSeconds: maxLifetimeSeconds as number, createdAt, expiresAt, revoked };
}

/** The same grant, revoked. Revocation stops new delegations; issued ones live until they expire. */
export function revokeGrant(grant: DelegationGrant): DelegationGrant {
  return { ...grant, revoked: true };
}

// ---- TinyCloud manifests ------------------------------------------------------------------------

export interface ResolvedManifest {
  readonly appId: string;
  /** The manifest's delegate (`did`), when it declares one — typically a TEE backend. */
  readonly did?: string;
  readonly capabilities: readonly CapabilityEntry[];
  /** The manifest's `expiry` (default 30 d), in milliseconds. */
  readonly expiryMs: number;
}

const APP_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const DURATION_RE = /^([1-9][0-9]{0,5})(s|m|h|d|w|y)$/;
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000, y: 31_557_600_000 };
const DEFAULT_EXPIRY_MS = 30 * 86_400_000;
const MANIFEST_FIELDS = ['manifest_version', 'app_id', 'name', 'did', 'space', 'prefix', 'defaults', 'expiry', 'permissions'];
// Display-only or companion flags: accepted and not applied (the grant can only come out narrower).
const IGNORED_MANIFEST_FIELDS = ['description', 'icon', 'appVersion', 'includePublicSpace', 'knowledge'];
const PERMISSION_FIELDS = ['service', 'space', 'path', 'actions', 'skipPrefix', 'description'];

interface TierEntry {
  readonly service: string;
  readonly actions: readonly string[];
}
// The TinyCloud SDK's default tiers (sdk-core manifest.ts), each on the path "/" under the prefix.
const TIERS: Record<'standard' | 'admin' | 'all', readonly TierEntry[]> = {
  standard: [
    { service: 'kv', actions: ['get', 'put', 'del', 'list', 'metadata'] },
    { service: 'sql', actions: ['read', 'write'] },
  ],
  admin: [
    { service: 'kv', actions: ['get', 'put', 'del', 'list', 'metadata'] },
    { service: 'sql', actions: ['read', 'write', 'ddl'] },
  ],
  all: [
    { service: 'kv', actions: ['get', 'put', 'del', 'list', 'metadata'] },
    { service: 'sql', actions: ['read', 'write', 'ddl'] },
    { service: 'duckdb', actions: ['read', 'write'] },
  ],
};

function parseDuration(v: unknown): number {
  const m = typeof v === 'string' ? DURATION_RE.exec(v) : null;
  if (m === null) throw new OpenKeyError('MALFORMED_REQUEST', 'manifest expiry must be like "30d"');
  const ms = Number(m[1]) * (UNIT_MS[m[2] as string] as number);
  if (ms > MAX_GRANT_LIFETIME_MS) throw new OpenKeyError('MALFORMED_REQUEST', 'manifest expiry exceeds the maximum grant lifetime');
  return ms;
}

/** The SDK's prefix rule: skip → path; "" prefix → path; "/x" → prefix + "/x"; "x" → prefix + "/x". */
function applyPrefix(prefix: string, path: string, skip: boolean): string {
  if (skip || prefix === '') return path;
  return path.startsWith('/') ? `${prefix}${path}` : `${prefix}/${path}`;
}

/**
 * Resolves one TinyCloud manifest (`manifest_version` 1) for `ownerDid`, following the SDK:
 * `space` defaults to "applications", `prefix` to `app_id`, `defaults` (true | "admin" | "all" |
 * false, default true) adds the SDK's tier entries on "/", short actions expand to
 * `tinycloud.<service>/<action>`, and `tinycloud.capabilities/read` is added for every space used.
 * Refused rather than half-applied: `secrets`, per-permission `expiry`, the synthetic
 * `tinycloud.vault` / `tinycloud.encryption` services, unknown `defaults` values and unknown fields.
 */
export function resolveManifest(ownerDid: string, input: unknown): ResolvedManifest {
  const owner = parseOwnerDid(ownerDid).did;
  if (!isPlainObject(input)) throw new OpenKeyError('MALFORMED_REQUEST', 'manifest is not an object');
  exactMembers(input, [...MANIFEST_FIELDS, ...IGNORED_MANIFEST_FIELDS], 'manifest');
  if (input['manifest_version'] !== undefined && input['manifest_version'] !== 1) throw new OpenKeyError('MALFORMED_REQUEST', 'manifest_version must be 1');
  const appId = input['app_id'];
  if (typeof appId !== 'string' || !APP_ID_RE.test(appId)) throw new OpenKeyError('MALFORMED_REQUEST', 'manifest app_id');
  const name = input['name'];
  if (typeof name !== 'string' || name.length === 0 || name.length > 128) throw new OpenKeyError('MALFORMED_REQUEST', 'manifest name');
  const did = input['did'] === undefined ? undefined : parseDelegateDid(input['did']).did;
  const space = input['space'] ?? 'applications';
  const prefixRaw = input['prefix'] ?? appId;
  if (typeof prefixRaw !== 'string' || (prefixRaw !== '' && (prefixRaw.endsWith('/') || checkPath(prefixRaw) !== prefixRaw))) throw new OpenKeyError('MALFORMED_REQUEST', 'manifest prefix');
  const prefix = prefixRaw;
  const expiryMs = input['expiry'] === undefined ? DEFAULT_EXPIRY_MS : parseDuration(input['expiry']);
  const defaults = input['defaults'] ?? true;
  if (defaults !== true && defaults !== false && defaults !== 'admin' && defaults !== 'all') throw new OpenKeyError('MALFORMED_REQUEST', 'manifest defaults must be true, false, "admin" or "all"');

  const entries: CapabilityEntry[] = [];
  const add = (service: string, spaceInput: unknown, path: string, actions: unknown): void => {
    const spaceId = resolveSpace(owner, spaceInput);
    const resource = formatResource(spaceId, service, normalizeRootPath(path));
    for (const ability of expandActions(service, actions)) entries.push({ resource, ability, caveats: [{}] });
    const capRead = formatResource(spaceId, 'capabilities', '');
    entries.push({ resource: capRead, ability: 'tinycloud.capabilities/read', caveats: [{}] });
  };
  if (defaults !== false) {
    for (const t of TIERS[defaults === true ? 'standard' : defaults]) add(t.service, space, applyPrefix(prefix, '/', false), t.actions);
  }
  const permissions = input['permissions'] ?? [];
  if (!Array.isArray(permissions)) throw new OpenKeyError('MALFORMED_REQUEST', 'manifest permissions must be a list');
  if (permissions.length > MAX_MANIFEST_PERMISSIONS) throw new OpenKeyError('PAYLOAD_TOO_LARGE', `more than ${MAX_MANIFEST_PERMISSIONS} manifest permissions`);
  for (const p of permissions as unknown[]) {
    if (!isPlainObject(p)) throw new OpenKeyError('MALFORMED_REQUEST', 'manifest permission is not an object');
    exactMembers(p, PERMISSION_FIELDS, 'manifest permission');
    if (p['service'] === 'tinycloud.vault' || p['service'] === 'tinycloud.encryption') throw new OpenKeyError('MALFORMED_REQUEST', `${String(p['service'])} permissions are not supported`);
    const service = shortService(p['service']);
    const skip = p['skipPrefix'] ?? false;
    if (typeof skip !== 'boolean') throw new OpenKeyError('MALFORMED_REQUEST', 'skipPrefix must be a boolean');
    if (typeof p['path'] !== 'string') throw new OpenKeyError('MALFORMED_REQUEST', 'manifest permission path');
    add(service, p['space'] ?? space, applyPrefix(prefix, p['path'], skip), p['actions']);
  }
  if (entries.length === 0) throw new OpenKeyError('MISSING_FIELD', 'manifest grants nothing');
  return { appId, ...(did !== undefined ? { did } : {}), capabilities: canonicalizeEntries(entries), expiryMs };
}

export interface ComposeGrantParams {
  readonly id: string;
  readonly owner: string;
  /** The app's manifest and its backends' manifests (1..MAX_MANIFESTS), untrusted input. */
  readonly manifests: readonly unknown[];
  readonly createdAt: number;
  /** Default: createdAt + the longest manifest expiry. */
  readonly expiresAt?: number;
  /** Default: DEFAULT_MAX_DELEGATION_LIFETIME_SECONDS. */
  readonly maxLifetimeSeconds?: number;
  /** Further delegate rules (e.g. the app's principal, an attestation policy), untrusted input. */
  readonly delegates?: readonly unknown[];
}

/**
 * One grant for the union of the manifests' capabilities (one owner approval). Each manifest that
 * declares a `did` contributes a `did` delegate rule scoped to that manifest's own capabilities, so
 * a backend can never receive more than its manifest asked for, even though the grant is the union.
 */
export function composeGrant(params: ComposeGrantParams): DelegationGrant {
  const owner = parseOwnerDid(params.owner).did;
  if (!Array.isArray(params.manifests) || params.manifests.length === 0) throw new OpenKeyError('MISSING_FIELD', 'manifests');
  if (params.manifests.length > MAX_MANIFESTS) throw new OpenKeyError('PAYLOAD_TOO_LARGE', `more than ${MAX_MANIFESTS} manifests`);
  const resolved = params.manifests.map((m) => resolveManifest(owner, m));
  const capabilities = canonicalizeEntries(resolved.flatMap((r) => r.capabilities));
  const scopes = new Map<string, CapabilityEntry[]>();
  for (const r of resolved) if (r.did !== undefined) scopes.set(r.did, [...(scopes.get(r.did) ?? []), ...r.capabilities]);
  const delegates: unknown[] = [...scopes.entries()].map(([did, scope]) => ({ kind: 'did', did, scope: canonicalizeEntries(scope) }));
  delegates.push(...(params.delegates ?? []));
  const expiresAt = params.expiresAt ?? params.createdAt + Math.max(...resolved.map((r) => r.expiryMs));
  return checkGrant({
    id: params.id,
    owner,
    capabilities,
    delegates,
    maxLifetimeSeconds: params.maxLifetimeSeconds ?? DEFAULT_MAX_DELEGATION_LIFETIME_SECONDS,
    createdAt: params.createdAt,
    expiresAt,
    revoked: false,
  });
}
