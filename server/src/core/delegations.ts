// Delegations as an appliance service (issue 5): owners approve grants (capability sets with
// delegate rules) for their keys; delegates — an app's session keys, TEE backends that prove who they
// are by attestation — receive subsets of them, signed by the owner key inside the appliance. The
// pure decisions live in core/delegation; this module stores grants and issued delegations,
// verifies backend attestation through a port, signs through the unsealed-key cache, and audits
// every decision in the same commit as the state it changes.

import { appendAudit } from './audit.ts';
import type { Authenticated } from './auth.ts';
import { utf8, zeroize } from './bytes.ts';
import { addressFromPublicKey } from './crypto/address.ts';
import { didKey } from './crypto/did.ts';
import {
  checkDelegationRequest,
  checkGrant,
  composeGrant,
  issueDelegation,
  parseDelegateDid,
  revokeGrant,
  type DelegationGrant,
  type IssuedDelegation,
  type VerifiedDelegateAttestation,
} from './delegation/index.ts';
import type { CapabilityEntry } from './delegation/capability.ts';
import { canonicalizeEntries, checkCapabilities } from './delegation/capability.ts';
import { OpenKeyError, isOpenKeyError, type ErrorCode } from './errors.ts';
import { checkKeyId } from './ids.ts';
import { IssuanceBound } from './issuance-bound.ts';
import type { UnsealedKeyCache } from './key-cache.ts';
import type { KeyService } from './keys.ts';
import type { ApprovalCheck } from './people.ts';
import type { KeyPolicy } from './policy.ts';
import type { Change, Clock, KeyRecord, Random, Store } from './ports.ts';
import type { PayloadHasher } from './signing.ts';

const GRANTS = 'dgrant'; // `${keyId}/${grantId}` → DelegationGrant JSON
const ISSUED = 'delegation'; // `${keyId}/${grantId}/${issuedAt:12 hex}.${cid}` → IssuedRecord JSON
const NONCES = 'delegation-nonce'; // base64url nonce → {} until used or expired
export const DELEGATION_NONCE_TTL_MS = 5 * 60_000;
export const DEFAULT_GRANT_LIFETIME_MS = 30 * 86_400_000;
const MAX_LIST = 1000;

/** A TEE backend's attestation as received (verified by the port, never by the domain). */
export interface DelegateEvidence {
  readonly quote: Uint8Array;
  readonly eventLog: string;
  readonly collateralJson: string;
  readonly nonce: Uint8Array;
}

/**
 * Verifies `evidence` against the appliance's verifier policy named `policy`, requiring that the
 * quote's report_data binds `delegatePublicKey` and `evidence.nonce`. Throws (any error) when not.
 */
export type DelegateAttestationVerifier = (evidence: DelegateEvidence, policy: string, delegatePublicKey: Uint8Array) => void;

export interface NewGrant {
  readonly keyId: string;
  readonly grantId: string;
  /** Untrusted: `[{resource, ability, caveats?}]`. */
  readonly capabilities: readonly unknown[];
  /** Untrusted TinyCloud manifests. */
  readonly manifests: readonly unknown[];
  /** Untrusted delegate rules (grant.ts DelegateRule shape). */
  readonly delegates: readonly unknown[];
  readonly maxLifetimeSeconds?: number;
  readonly expiresAt?: number;
  readonly chainId: number;
}

export interface DelegateInput {
  readonly keyId: string;
  readonly grantId: string;
  readonly delegateDid: string;
  readonly capabilities: readonly unknown[];
  readonly lifetimeSeconds: number;
  readonly notBefore?: number;
  readonly requestId?: string;
  readonly evidence?: DelegateEvidence;
}

export interface IssuedRecord {
  readonly cid: string;
  readonly grantId: string;
  readonly delegateDid: string;
  readonly issuedAt: number;
  readonly expiresAt: number;
  readonly capabilities: readonly CapabilityEntry[];
  readonly format: 'siwe-cacao' | 'ucan';
  readonly status: 'active' | 'expired' | 'revoked';
}

export interface DelegationsOptions {
  readonly store: Store;
  readonly clock: Clock;
  readonly random: Random;
  readonly keys: KeyService;
  readonly cache: UnsealedKeyCache;
  readonly hash: PayloadHasher;
  /** The key's signing policy as stored (owner rule: whether grants need passkey approval). */
  readonly policies: { load(keyId: string): Promise<unknown> };
  readonly verifyAttestation: DelegateAttestationVerifier;
  /** SIWE domain the appliance presents (e.g. the appliance's public host). */
  readonly domain: string;
}

type Approval = () => Promise<ApprovalCheck | undefined>;

const encode = (v: unknown): Uint8Array => utf8(JSON.stringify(v));
const decode = (b: Uint8Array): unknown => JSON.parse(Buffer.from(b).toString('utf8')) as unknown;
const b64u = (b: Uint8Array): string => Buffer.from(b).toString('base64url');

/** Outstanding delegation nonces per process (GetDelegationNonce is unauthenticated). */
export const MAX_OUTSTANDING_NONCES = 10_000;

export class Delegations {
  readonly #nonces = new IssuanceBound(MAX_OUTSTANDING_NONCES, DELEGATION_NONCE_TTL_MS);

  constructor(private readonly o: DelegationsOptions) {}

  // ---- grants (owner) ----

  async createGrant(auth: Authenticated, input: NewGrant, approval: Approval): Promise<DelegationGrant> {
    return this.audited(auth, 'delegation_grant', input.keyId, async (key, used) => {
      const now = this.o.clock.now();
      const owner = ownerDid(key, input.chainId);
      const base = { id: input.grantId, owner, createdAt: now };
      const lifetime = input.maxLifetimeSeconds === undefined ? {} : { maxLifetimeSeconds: input.maxLifetimeSeconds };
      let grant: DelegationGrant;
      if (input.manifests.length > 0) {
        const composed = composeGrant({ ...base, manifests: input.manifests, delegates: input.delegates, ...lifetime, ...(input.expiresAt === undefined ? {} : { expiresAt: input.expiresAt }) });
        // Explicit capabilities join the manifests' union (one approval for everything). They are
        // untrusted input: checked (caveats defaulted to [{}]) before they are merged.
        grant = input.capabilities.length === 0 ? composed : checkGrant({ ...composed, capabilities: canonicalizeEntries([...composed.capabilities, ...checkCapabilities(input.capabilities)]) });
      } else {
        grant = checkGrant({
          ...base,
          capabilities: input.capabilities,
          delegates: input.delegates,
          maxLifetimeSeconds: input.maxLifetimeSeconds ?? 3600,
          expiresAt: input.expiresAt ?? now + DEFAULT_GRANT_LIFETIME_MS,
          revoked: false,
        });
      }
      return {
        result: grant,
        changes: [...used, { kind: 'putDoc', space: GRANTS, id: `${key.keyId}/${grant.id}`, value: encode(grant), ifVersion: 0, conflict: 'CONFLICT' }],
      };
    }, approval);
  }

  async revokeGrant(auth: Authenticated, keyId: string, grantId: string, approval: Approval): Promise<DelegationGrant> {
    return this.audited(auth, 'delegation_revoke', keyId, async (key, used) => {
      const { grant, version } = await this.grant(key.keyId, grantId);
      const revoked = revokeGrant(grant);
      return { result: revoked, changes: [...used, { kind: 'putDoc', space: GRANTS, id: `${key.keyId}/${grantId}`, value: encode(revoked), ifVersion: version }] };
    }, approval);
  }

  async listGrants(auth: Authenticated, keyId: string): Promise<DelegationGrant[]> {
    const key = await this.owned(auth, keyId);
    await this.o.store.commit(auth.nonceChanges);
    const docs = await this.o.store.listDocs(GRANTS, { prefix: `${key.keyId}/`, limit: MAX_LIST });
    return docs.map((d) => checkGrant(decode(d.doc.value)));
  }

  async listDelegations(auth: Authenticated, keyId: string, grantId: string): Promise<IssuedRecord[]> {
    const key = await this.owned(auth, keyId);
    await this.o.store.commit(auth.nonceChanges);
    const now = this.o.clock.now();
    const grants = new Map((await this.o.store.listDocs(GRANTS, { prefix: `${key.keyId}/`, limit: MAX_LIST })).map((d) => [d.id.slice(key.keyId.length + 1), checkGrant(decode(d.doc.value))]));
    const docs = await this.o.store.listDocs(ISSUED, { prefix: grantId === '' ? `${key.keyId}/` : `${key.keyId}/${grantId}/`, limit: MAX_LIST });
    return docs.map((d) => {
      const r = decode(d.doc.value) as Omit<IssuedRecord, 'status'>;
      const status = grants.get(r.grantId)?.revoked === true ? 'revoked' : r.expiresAt <= now ? 'expired' : 'active';
      return { ...r, status };
    });
  }

  // ---- delegation (any authenticated caller the grant admits) ----

  /** A single-use nonce for a backend's quote. */
  async nonce(): Promise<Uint8Array> {
    const n = this.o.random.bytes(32);
    const expiresAt = this.#nonces.take(this.o.clock.now());
    await this.o.store.commit([{ kind: 'putDoc', space: NONCES, id: b64u(n), value: encode({ expiresAt }), ifVersion: 0, expiresAt }]);
    return n;
  }

  async delegate(auth: Authenticated, input: DelegateInput): Promise<IssuedDelegation> {
    const now = this.o.clock.now();
    const always: Change[] = [...auth.nonceChanges];
    const audit = (decision: 'allow' | 'deny', reason: string): Change =>
      appendAudit({ time: now, principal: auth.principal.id, operation: 'delegate', keyId: safeKeyId(input.keyId), requestDigest: auth.requestDigest, decision, reason: reason as ErrorCode });
    let issued: IssuedDelegation;
    try {
      const key = await this.o.store.getKey(checkKeyId(input.keyId));
      if (key === undefined) throw new OpenKeyError('KEY_NOT_FOUND');
      const { grant } = await this.grant(key.keyId, input.grantId);
      const request = checkDelegationRequest(
        {
          delegate: input.delegateDid,
          capabilities: input.capabilities,
          lifetimeSeconds: input.lifetimeSeconds,
          ...(input.notBefore === undefined ? {} : { notBefore: input.notBefore }),
          ...(input.requestId === undefined ? {} : { requestId: input.requestId }),
        },
        grant.owner,
      );
      // The grant's own state first: a revoked or expired grant says so, whatever the evidence.
      if (grant.revoked) throw new OpenKeyError('GRANT_REVOKED', grant.id);
      if (now >= grant.expiresAt) throw new OpenKeyError('GRANT_EXPIRED', grant.id);
      const attestation = input.evidence === undefined ? undefined : await this.attest(grant, input.evidence, input.delegateDid, always);
      issued = await issueDelegation({
        grant,
        request,
        owner: { algorithm: key.algorithm, publicKey: key.publicKey },
        sign: (message) => this.signAsOwner(key, message),
        clock: { now: () => now },
        random: this.o.random,
        domain: this.o.domain,
        callerPrincipalId: auth.principal.id,
        ...(attestation === undefined ? {} : { attestation }),
      });
    } catch (e) {
      if (isOpenKeyError(e) && e.code !== 'INTERNAL') await this.o.store.commit([...always, audit('deny', e.code)]);
      throw e;
    }
    const record: Omit<IssuedRecord, 'status'> = {
      cid: issued.cid,
      grantId: issued.grantId,
      delegateDid: issued.delegateDid,
      issuedAt: issued.issuedAt,
      expiresAt: issued.expiresAt,
      capabilities: issued.capabilities,
      format: issued.format,
    };
    const id = `${input.keyId}/${issued.grantId}/${issued.issuedAt.toString(16).padStart(12, '0')}.${issued.cid}`;
    // Durable with its audit record before the delegation leaves the appliance.
    await this.o.store.commit([...always, { kind: 'putDoc', space: ISSUED, id, value: encode(record) }, audit('allow', 'GRANT')]);
    return issued;
  }

  // ---- internals ----

  /**
   * Verifies a backend's evidence against each attestation policy the grant names (the first that
   * passes wins) and consumes its nonce in `always` (so a quote is used once, allowed or not). When
   * no policy passes but the grant has other rules (a DID, a calling principal), the request goes on
   * without an attestation verdict and those rules decide.
   */
  private async attest(grant: DelegationGrant, evidence: DelegateEvidence, delegateDid: string, always: Change[]): Promise<VerifiedDelegateAttestation | undefined> {
    const id = b64u(evidence.nonce);
    const doc = evidence.nonce.length === 32 ? await this.o.store.getDoc(NONCES, id) : undefined;
    if (doc === undefined || (doc.expiresAt ?? 0) <= this.o.clock.now()) throw new OpenKeyError('DELEGATE_NOT_ALLOWED', 'unknown, used or expired delegation nonce');
    always.push({ kind: 'deleteDoc', space: NONCES, id, ifVersion: doc.version, conflict: 'DELEGATE_NOT_ALLOWED' });
    const delegate = parseDelegateDid(delegateDid);
    if (delegate.publicKey === undefined) throw new OpenKeyError('DELEGATE_NOT_ALLOWED', 'an attested delegate must be an Ed25519 did:key');
    const policies = grant.delegates.flatMap((r) => (r.kind === 'attested' ? [r.policy] : []));
    for (const policy of policies) {
      try {
        this.o.verifyAttestation(evidence, policy, delegate.publicKey);
        return { policy, subjectDid: delegate.did };
      } catch {
        // try the next policy
      }
    }
    if (grant.delegates.some((r) => r.kind !== 'attested')) return undefined;
    throw new OpenKeyError('DELEGATE_NOT_ALLOWED', 'the attestation satisfies none of the grant’s policies');
  }

  private signAsOwner(key: KeyRecord, message: Uint8Array): Uint8Array {
    const data = key.algorithm === 'secp256k1' ? this.o.hash.personalMessage(message) : message;
    return this.o.cache.with(
      key,
      () => {
        const secret = this.o.keys.unseal(key);
        try {
          return this.o.keys.usable(key.algorithm, secret);
        } finally {
          zeroize(secret);
        }
      },
      (k) => k.sign(data),
    );
  }

  private async grant(keyId: string, grantId: string): Promise<{ grant: DelegationGrant; version: number }> {
    if (grantId === '') throw new OpenKeyError('MISSING_FIELD', 'grant_id');
    const doc = await this.o.store.getDoc(GRANTS, `${keyId}/${grantId}`);
    if (doc === undefined) throw new OpenKeyError('GRANT_NOT_FOUND');
    return { grant: checkGrant(decode(doc.value)), version: doc.version };
  }

  private async owned(auth: Authenticated, keyId: string): Promise<KeyRecord> {
    const record = await this.o.store.getKey(checkKeyId(keyId));
    if (record === undefined || record.owner !== auth.principal.id) throw new OpenKeyError('KEY_NOT_FOUND');
    return record;
  }

  /** Owner-only change with approval when the owner rule requires it; audited either way. */
  private async audited<T>(
    auth: Authenticated,
    operation: 'delegation_grant' | 'delegation_revoke',
    keyId: string,
    fn: (key: KeyRecord, used: readonly Change[]) => Promise<{ result: T; changes: Change[] }>,
    approval: Approval,
  ): Promise<T> {
    const now = this.o.clock.now();
    const audit = (decision: 'allow' | 'deny', reason: string): Change =>
      appendAudit({ time: now, principal: auth.principal.id, operation, keyId: safeKeyId(keyId), requestDigest: auth.requestDigest, decision, reason: reason as ErrorCode });
    let used: readonly Change[] = [];
    let out: { result: T; changes: Change[] };
    try {
      const key = await this.owned(auth, keyId);
      const check = await approval();
      used = check?.changes ?? [];
      const policy = (await this.o.policies.load(key.keyId)) as KeyPolicy | undefined;
      if (policy?.owner?.requireApproval === true) {
        if (check === undefined) throw new OpenKeyError('APPROVAL_REQUIRED', 'the owner rule requires a passkey approval of grants');
        if (check.approver !== key.owner) throw new OpenKeyError('APPROVAL_INVALID', 'approved by someone other than the owner');
      }
      out = await fn(key, used);
    } catch (e) {
      if (isOpenKeyError(e) && e.code !== 'INTERNAL') await this.o.store.commit([...auth.nonceChanges, ...used, audit('deny', e.code)]);
      throw e;
    }
    try {
      await this.o.store.commit([...auth.nonceChanges, ...out.changes, audit('allow', 'OWNER')]);
    } catch (e) {
      if (isOpenKeyError(e) && e.code === 'CONFLICT') await this.o.store.commit([...auth.nonceChanges, ...used, audit('deny', 'CONFLICT')]);
      throw e;
    }
    return out.result;
  }
}

/** The key's DID as a delegation root: did:pkh:eip155:<chain>:<address>, or did:key for Ed25519. */
export function ownerDid(key: KeyRecord, chainId: number): string {
  if (key.algorithm === 'ed25519') return didKey('ed25519', key.publicKey);
  if (!Number.isSafeInteger(chainId) || chainId < 1) throw new OpenKeyError('MALFORMED_REQUEST', 'chain_id');
  return `did:pkh:eip155:${chainId}:${addressFromPublicKey(key.publicKey)}`;
}

function safeKeyId(keyId: string): string {
  return /^key_[0-9a-f]{32}$/.test(keyId) ? keyId : '';
}
