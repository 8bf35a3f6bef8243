// Stored key policies and the owner's changes to them (issue 4 item 3): grant, revoke and the owner
// rule. A policy is one document per key, changed by compare-and-set on its version, so concurrent
// changes never lose one; each change is audited in the same commit. When the owner rule requires
// approval, every change needs the owner's passkey approval of the exact request.

import { appendAudit } from './audit.ts';
import type { Authenticated } from './auth.ts';
import { utf8 } from './bytes.ts';
import { OpenKeyError, isOpenKeyError, type ErrorCode } from './errors.ts';
import { checkKeyId } from './ids.ts';
import type { ApprovalCheck } from './people.ts';
import { checkKeyPolicy, type KeyGrant, type KeyPolicy, type UsageRule } from './policy.ts';
import type { Change, Clock, KeyRecord, Store } from './ports.ts';

/** The document space of key policies (one document per key, id = key id). */
export const POLICY_SPACE = 'policy';
const SPACE = POLICY_SPACE;
const MAX_ATTEMPTS = 5;

export interface StoredPolicy {
  readonly policy: KeyPolicy;
  /** Document version; 0 when the key never had a policy. */
  readonly version: number;
}

export type PolicyChange =
  | { readonly kind: 'grant'; readonly grant: KeyGrant }
  | { readonly kind: 'revoke'; readonly grantId: string }
  | { readonly kind: 'set_owner_rule'; readonly rule: UsageRule | undefined };

/** Verifies an approval attached to the request (core/people.ts People.verifyApproval, bound). */
export type ApprovalVerifier = () => Promise<ApprovalCheck | undefined>;

// ---- JSON form (bigints as decimal strings) -----------------------------------------------------

export function encodePolicy(p: KeyPolicy): Uint8Array {
  return utf8(JSON.stringify(p, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)));
}

/** Parses a stored policy; a document that does not parse yields an object that fails the check. */
export function decodePolicy(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8'), (k, v: unknown) => {
      if (k === 'chainIds' && Array.isArray(v)) return v.map((x: unknown) => (typeof x === 'string' && /^[0-9]{1,78}$/.test(x) ? BigInt(x) : x));
      return v;
    });
  } catch {
    return undefined;
  }
}

export interface KeyPoliciesOptions {
  readonly store: Store;
  readonly clock: Clock;
}

export class KeyPolicies {
  constructor(private readonly o: KeyPoliciesOptions) {}

  /**
   * The policy as stored, unchecked (signing passes it to evaluatePolicy, which denies with
   * POLICY_INVALID when it does not validate), or undefined when the key has none.
   */
  async load(keyId: string): Promise<unknown> {
    const doc = await this.o.store.getDoc(SPACE, keyId);
    return doc === undefined ? undefined : decodePolicy(doc.value);
  }

  /** The caller's key's policy; KEY_NOT_FOUND for anyone but the owner. */
  async get(auth: Authenticated, keyId: string): Promise<StoredPolicy> {
    const key = await this.owned(auth, keyId);
    await this.o.store.commit(auth.nonceChanges);
    return this.read(key.keyId);
  }

  /**
   * Applies `change` for the key's owner. Audited either way (operation grant / revoke /
   * set_owner_rule); denials commit the stamp's nonce and the record only.
   */
  async change(auth: Authenticated, keyId: string, change: PolicyChange, approval: ApprovalVerifier): Promise<StoredPolicy> {
    const now = this.o.clock.now();
    const audit = (decision: 'allow' | 'deny', reason: string): Change =>
      appendAudit({ time: now, principal: auth.principal.id, operation: change.kind, keyId, requestDigest: auth.requestDigest, decision, reason: reason as ErrorCode });
    const fail = async (e: unknown, extra: readonly Change[] = []): Promise<never> => {
      if (isOpenKeyError(e) && e.code !== 'INTERNAL' && e.code !== 'STAMP_REPLAYED') {
        await this.o.store.commit([...auth.nonceChanges, ...extra, audit('deny', e.code)]);
      }
      throw e;
    };

    let key: KeyRecord;
    let check: ApprovalCheck | undefined;
    try {
      key = await this.owned(auth, keyId);
      check = await approval();
    } catch (e) {
      return fail(e);
    }
    const used = check?.changes ?? [];
    for (let attempt = 1; ; attempt++) {
      let current: StoredPolicy;
      let next: KeyPolicy;
      try {
        current = await this.read(key.keyId);
        if (current.policy.owner?.requireApproval === true) {
          if (check === undefined) throw new OpenKeyError('APPROVAL_REQUIRED', 'the owner rule requires a passkey approval of policy changes');
          if (check.approver !== key.owner) throw new OpenKeyError('APPROVAL_INVALID', 'approved by someone other than the owner');
        }
        if (change.kind === 'grant' && change.grant.principal.id === key.owner) throw new OpenKeyError('MALFORMED_REQUEST', 'the owner needs no grant (set the owner rule instead)');
        next = checkKeyPolicy(apply(current.policy, change));
      } catch (e) {
        return fail(e, used);
      }
      try {
        await this.o.store.commit([
          ...auth.nonceChanges,
          ...used,
          { kind: 'putDoc', space: SPACE, id: key.keyId, value: encodePolicy(next), ifVersion: current.version },
          audit('allow', 'OWNER'),
        ]);
        return { policy: next, version: current.version + 1 };
      } catch (e) {
        // Another change landed between read and write: re-read and re-apply.
        if (isOpenKeyError(e) && e.code === 'CONFLICT' && attempt < MAX_ATTEMPTS) continue;
        // The approval's passkey was used meanwhile (its counter's compare-and-set failed): a
        // refusal of the approval, reported as every other bad approval is.
        if (check !== undefined && isOpenKeyError(e) && e.code === 'WEBAUTHN_COUNTER_REGRESSION') {
          return fail(new OpenKeyError('APPROVAL_INVALID', 'approval used meanwhile', { cause: e }));
        }
        return fail(e, isOpenKeyError(e) && e.code === 'CONFLICT' ? used : []);
      }
    }
  }

  private async read(keyId: string): Promise<StoredPolicy> {
    const doc = await this.o.store.getDoc(SPACE, keyId);
    if (doc === undefined) return { policy: checkKeyPolicy({ grants: [] }), version: 0 };
    // A stored policy that no longer validates is reported, not silently replaced.
    const raw = decodePolicy(doc.value);
    try {
      return { policy: checkKeyPolicy(raw as KeyPolicy), version: doc.version };
    } catch (e) {
      throw new OpenKeyError('INTERNAL', 'stored policy is invalid', { cause: e });
    }
  }

  private async owned(auth: Authenticated, keyId: string): Promise<KeyRecord> {
    const record = await this.o.store.getKey(checkKeyId(keyId));
    if (record === undefined || record.owner !== auth.principal.id) throw new OpenKeyError('KEY_NOT_FOUND');
    return record;
  }
}

function apply(p: KeyPolicy, c: PolicyChange): KeyPolicy {
  switch (c.kind) {
    case 'grant':
      return { ...p, grants: [...p.grants.filter((g) => g.id !== c.grant.id), c.grant] };
    case 'revoke':
      if (!p.grants.some((g) => g.id === c.grantId)) throw new OpenKeyError('GRANT_NOT_FOUND');
      return { ...p, grants: p.grants.filter((g) => g.id !== c.grantId) };
    case 'set_owner_rule':
      return c.rule === undefined ? { grants: p.grants } : { owner: c.rule, grants: p.grants };
  }
}
