// Typed signing in the domain. Every payload is checked and hashed (EIP-191, EIP-712 inside the
// appliance), an attached passkey approval is verified, and the key's policy decides (deny by
// default) before any key is unsealed. The decision, its audit record, the stamp's nonce and the
// policy's counters are ONE durable commit before anything is signed; a batch is decided in full
// (all or nothing) before its first signature. secp256k1 signatures are 65 bytes r‖s‖v, low-S,
// v ∈ {27, 28}; Ed25519 signs the message.
//
// What a decision reads (the key record and its policy) comes through `DecisionReads`: straight
// from the store in one process; from a cluster worker's cache otherwise, in which case the commit
// carries the versions it decided on and the store refuses it (CONFLICT, nothing written) if any is
// no longer current. The decision is then made again on fresh reads, a bounded number of times.

import { commitAudited, denialAudit, type AuditedItem } from './audit.ts';
import type { Authenticated } from './auth.ts';
import { zeroize } from './bytes.ts';
import { OpenKeyError, isOpenKeyError, type ErrorCode } from './errors.ts';
import { checkKeyId, isKeyId } from './ids.ts';
import type { KeyPolicies } from './key-policies.ts';
import type { UnsealedKeyCache } from './key-cache.ts';
import type { KeyService } from './keys.ts';
import type { ApprovalCheck } from './people.ts';
import { evaluatePolicy, principalKindOf, type Eip712Fields, type KeyPolicy, type SignOperation } from './policy.ts';
import type { Change, Clock, KeyAlgorithm, KeyRecord, Store } from './ports.ts';

export const MAX_MESSAGE_BYTES = 64 * 1024;
export const MAX_TYPED_DATA_CHARS = 64 * 1024;
export const MAX_BATCH_ITEMS = 64;

export type SignPayload =
  | { readonly kind: 'personalMessage'; readonly message: Uint8Array }
  | { readonly kind: 'typedData'; readonly json: string }
  | { readonly kind: 'rawDigest'; readonly digest: Uint8Array }
  | { readonly kind: 'ed25519Message'; readonly message: Uint8Array };

export interface SignItem {
  readonly keyId: string;
  readonly payload: SignPayload | undefined;
}

export interface Signature {
  readonly keyId: string;
  readonly signature: Uint8Array;
  /** The 32-byte hash that was signed (secp256k1); empty for Ed25519. */
  readonly digest: Uint8Array;
}

/** Payload hashing (core/key-material.ts). */
export interface PayloadHasher {
  personalMessage(message: Uint8Array): Uint8Array;
  /** Throws INVALID_TYPED_DATA (or PAYLOAD_TOO_LARGE) for a document that breaks EIP-712. */
  typedData(json: string): Eip712Fields & { readonly digest: Uint8Array };
}

/** Verifies the request's passkey approval, if it carries one (bound to the request by the caller). */
export type ApprovalVerifier = () => Promise<ApprovalCheck | undefined>;

/** Key `keyId`'s record and stored policy, as one decision reads them. */
export interface KeyReading {
  readonly record: Promise<KeyRecord | undefined>;
  /** The policy as stored, unchecked (evaluatePolicy checks it), or undefined when there is none. */
  readonly policy: Promise<unknown>;
  /** Once both have settled: the conditions under which they are still what is stored. */
  conditions(): readonly Change[];
}

/**
 * Where decisions read from. The default reads the store and has nothing to re-check; a cluster
 * worker's (cluster/worker-reads.ts) serves cached values and returns the conditions that make the
 * store owner check them at commit.
 */
export interface DecisionReads {
  /** Starts reading key `keyId`'s record and policy; `fresh` bypasses any cache. */
  read(keyId: string, fresh: boolean): KeyReading;
  /** Conditions the caller's authentication must still meet at commit (e.g. its session is live). */
  caller(auth: Authenticated): readonly Change[];
  /** A commit found readings of these keys stale: drop whatever is kept of them. */
  forget(keyIds: Iterable<string>): void;
}

/** Decisions made on cached reads that keep turning out stale give up after this many. */
export const MAX_DECISIONS = 3;

export interface SignServiceOptions {
  readonly store: Store;
  readonly clock: Clock;
  readonly keys: KeyService;
  readonly policies: Pick<KeyPolicies, 'load'>;
  readonly cache: UnsealedKeyCache;
  readonly hash: PayloadHasher;
  /** Default: the store and `policies`, read afresh for every decision. */
  readonly reads?: DecisionReads;
}

const NO_CHANGES: readonly Change[] = [];

/** Reads from the store itself: always current, so nothing to check at commit. */
class StoreReads implements DecisionReads {
  constructor(
    private readonly store: Pick<Store, 'getKey'>,
    private readonly policies: Pick<KeyPolicies, 'load'>,
  ) {}
  read(keyId: string): KeyReading {
    return { record: this.store.getKey(keyId), policy: this.policies.load(keyId), conditions: () => NO_CHANGES };
  }
  caller(): readonly Change[] {
    return NO_CHANGES;
  }
  forget(): void {}
}

interface Prepared {
  readonly record: KeyRecord | undefined;
  readonly keyId: string;
  readonly operation: SignOperation;
  readonly messageBytes: number;
  readonly eip712?: Eip712Fields;
  /** What the key signs: a digest (secp256k1) or the message (Ed25519). */
  readonly data: Uint8Array;
  readonly digest: Uint8Array;
}

export class SignService {
  readonly #reads: DecisionReads;

  constructor(private readonly o: SignServiceOptions) {
    this.#reads = o.reads ?? new StoreReads(o.store, o.policies);
  }

  /**
   * `auth` may still be in progress: the key record and policy are read meanwhile (one round trip
   * to a cluster's store owner instead of three), and nothing is decided before it succeeds.
   */
  async sign(auth: Authenticated | Promise<Authenticated>, item: SignItem, approval: ApprovalVerifier = noApproval): Promise<Signature> {
    const [sig] = await this.decideAndSign(auth, [item], approval);
    return sig as Signature;
  }

  async signBatch(auth: Authenticated | Promise<Authenticated>, items: readonly SignItem[], approval: ApprovalVerifier = noApproval): Promise<Signature[]> {
    if (items.length === 0 || items.length > MAX_BATCH_ITEMS) {
      await auth; // an unauthenticated caller learns nothing about the batch rules
      if (items.length === 0) throw new OpenKeyError('MISSING_FIELD', 'items');
      throw new OpenKeyError('PAYLOAD_TOO_LARGE', `batch of ${items.length} > ${MAX_BATCH_ITEMS}`);
    }
    return this.decideAndSign(auth, items, approval);
  }

  private async decideAndSign(pendingAuth: Authenticated | Promise<Authenticated>, items: readonly SignItem[], approval: ApprovalVerifier): Promise<Signature[]> {
    const reads = this.#reads;
    // One reading per distinct key (a batch usually signs with one key), for the record and the
    // policy, started before authentication finishes; their results are used only after it.
    let readings = startReadings(reads, items, false);
    const auth = await pendingAuth;
    let now = this.o.clock.now();
    const prepared: Prepared[] = [];
    let check: ApprovalCheck | undefined;
    let policies: unknown[];
    /** One denial record for the whole request, committed with the stamp's nonce only. */
    const refuse = async (code: ErrorCode): Promise<void> => {
      const keyId = items.length === 1 ? (items[0]?.keyId ?? '') : '';
      const entry = { time: now, principal: auth.principal.id, operation: prepared[0]?.operation ?? operationOf(items[0]?.payload), keyId: safeId(keyId), requestDigest: auth.requestDigest };
      await this.o.store.commit([...auth.nonceChanges, ...reads.caller(auth), denialAudit(entry, code)], { signal: auth.signal });
    };
    try {
      // Every well-formed key id of the batch has its reading; an ill-formed one fails in prepare.
      const records = await recordsOf(readings);
      for (const item of items) prepared.push(this.prepare(item, records));
      check = await approval();
      policies = await policiesOf(prepared, readings);
    } catch (e) {
      // A request refused before policy (malformed payload, bad approval) is a decision too.
      if (isOpenKeyError(e) && e.code !== 'INTERNAL') await refuse(e.code);
      throw e;
    }

    const principal = { kind: principalKindOf(auth.principal.role), id: auth.principal.id };
    const always: Change[] = [...auth.nonceChanges, ...(check?.changes ?? []), ...reads.caller(auth)];
    for (let attempt = 1; ; attempt++) {
      const conditions = [...readings.values()].flatMap((r) => r.conditions());
      const audited: AuditedItem[] = prepared.map((p, i) => {
        const decision = evaluatePolicy({
          principal,
          ...(auth.session === undefined ? {} : { session: auth.session.id }),
          key: p.record,
          policy: policies[i] as KeyPolicy | undefined,
          operation: p.operation,
          messageBytes: p.messageBytes,
          ...(p.eip712 === undefined ? {} : { eip712: p.eip712 }),
          requestDigest: check?.challenge ?? auth.requestDigest,
          ...(check === undefined ? {} : { approval: { approver: check.approver, requestDigest: check.challenge } }),
          now,
        });
        return { decision, principal: auth.principal.id, operation: p.operation, keyId: p.keyId, requestDigest: auth.requestDigest };
      });
      try {
        await commitAudited(this.o.store, { time: now, items: audited, always: conditions.length === 0 ? always : [...always, ...conditions], signal: auth.signal });
        break;
      } catch (e) {
        // Something this decision read changed before it committed, and nothing was written:
        // decide again on fresh reads (a revocation that landed meanwhile is never bypassed).
        if (conditions.length > 0 && isOpenKeyError(e) && e.code === 'CONFLICT' && attempt < MAX_DECISIONS) {
          reads.forget(readings.keys());
          readings = startReadings(reads, items, true);
          for (const [i, p] of prepared.entries()) prepared[i] = { ...p, record: await (readings.get(p.keyId) as KeyReading).record };
          policies = await policiesOf(prepared, readings);
          now = this.o.clock.now();
          continue;
        }
        // The approval's own conditions (its single-use marker, its passkey's counter) failed inside
        // the commit: it was used meanwhile (a replay, or a race), and nothing was written. That is
        // a refusal like any other bad approval: audited, with the nonce, as APPROVAL_INVALID.
        if (check !== undefined && isOpenKeyError(e) && (e.code === 'APPROVAL_INVALID' || e.code === 'WEBAUTHN_COUNTER_REGRESSION')) {
          await refuse('APPROVAL_INVALID');
          throw new OpenKeyError('APPROVAL_INVALID', 'approval used meanwhile', { cause: e });
        }
        throw e;
      }
    }
    return prepared.map((p) => this.signPrepared(p));
  }

  /**
   * Checks and hashes one item, given the records of the request's keys (read before, once per
   * key, not once per item). The key may be missing: policy denies that like a foreign key.
   */
  private prepare(item: SignItem, records: ReadonlyMap<string, KeyRecord | undefined>): Prepared {
    const keyId = checkKeyId(item.keyId);
    const payload = item.payload;
    if (payload === undefined) throw new OpenKeyError('MISSING_FIELD', 'payload');
    const base = { record: records.get(keyId), keyId };
    switch (payload.kind) {
      case 'personalMessage': {
        checkMessage(payload.message, 'personal_message.message');
        const digest = this.o.hash.personalMessage(payload.message);
        return { ...base, operation: 'personal_sign', messageBytes: payload.message.length, data: digest, digest };
      }
      case 'typedData': {
        if (payload.json.length === 0) throw new OpenKeyError('MISSING_FIELD', 'typed_data.json');
        if (payload.json.length > MAX_TYPED_DATA_CHARS) throw new OpenKeyError('PAYLOAD_TOO_LARGE', 'typed_data.json');
        const h = this.o.hash.typedData(payload.json);
        return { ...base, operation: 'eip712', messageBytes: payload.json.length, eip712: { primaryType: h.primaryType, domain: h.domain }, data: h.digest, digest: h.digest };
      }
      case 'rawDigest': {
        if (payload.digest.length === 0) throw new OpenKeyError('MISSING_FIELD', 'raw_digest');
        if (payload.digest.length !== 32) throw new OpenKeyError('INVALID_DIGEST_LENGTH');
        const digest = Uint8Array.from(payload.digest);
        return { ...base, operation: 'raw_digest', messageBytes: 32, data: digest, digest };
      }
      case 'ed25519Message':
        checkMessage(payload.message, 'ed25519_message');
        return { ...base, operation: 'ed25519', messageBytes: payload.message.length, data: Uint8Array.from(payload.message), digest: new Uint8Array(0) };
    }
  }

  private signPrepared(p: Prepared): Signature {
    const record = p.record;
    if (record === undefined || record.algorithm !== requiredAlgorithm(p.operation)) throw new OpenKeyError('INTERNAL', 'signing a request policy did not allow');
    const signature = this.o.cache.with(
      record,
      () => {
        const secret = this.o.keys.unseal(record);
        try {
          return this.o.keys.usable(record.algorithm, secret);
        } finally {
          zeroize(secret);
        }
      },
      (key) => key.sign(p.data),
    );
    return { keyId: record.keyId, signature, digest: p.digest };
  }
}

/** One reading per distinct, well-formed key id of `items`. */
function startReadings(reads: DecisionReads, items: readonly SignItem[], fresh: boolean): Map<string, KeyReading> {
  const readings = new Map<string, KeyReading>();
  for (const item of items) {
    if (!isKeyId(item.keyId) || readings.has(item.keyId)) continue;
    const reading = reads.read(item.keyId, fresh);
    // Settled here too, so a read that fails while authentication fails is not left unhandled.
    reading.record.catch(() => undefined);
    reading.policy.catch(() => undefined);
    readings.set(item.keyId, reading);
  }
  return readings;
}

/** The record of each key read (undefined for a key that does not exist). */
async function recordsOf(readings: ReadonlyMap<string, KeyReading>): Promise<Map<string, KeyRecord | undefined>> {
  const out = new Map<string, KeyRecord | undefined>();
  for (const [keyId, reading] of readings) out.set(keyId, await reading.record);
  return out;
}

/** Each prepared item's policy (none for a key that does not exist: policy denies that anyway). */
function policiesOf(prepared: readonly Prepared[], readings: ReadonlyMap<string, KeyReading>): Promise<unknown[]> {
  return Promise.all(prepared.map((p) => (p.record === undefined ? undefined : readings.get(p.keyId)?.policy)));
}

/** The operation a payload asks for (for records of requests refused before they were prepared). */
function operationOf(p: SignPayload | undefined): SignOperation {
  switch (p?.kind) {
    case 'typedData':
      return 'eip712';
    case 'rawDigest':
      return 'raw_digest';
    case 'ed25519Message':
      return 'ed25519';
    default:
      return 'personal_sign';
  }
}

const noApproval: ApprovalVerifier = () => Promise.resolve(undefined);

function requiredAlgorithm(op: SignOperation): KeyAlgorithm {
  return op === 'ed25519' ? 'ed25519' : 'secp256k1';
}

/** A key id as the audit log may hold it (ids that fail the syntax check are not recorded). */
function safeId(keyId: string): string {
  return /^key_[0-9a-f]{32}$/.test(keyId) ? keyId : '';
}

function checkMessage(m: Uint8Array, label: string): void {
  if (m.length === 0) throw new OpenKeyError('MISSING_FIELD', label);
  if (m.length > MAX_MESSAGE_BYTES) throw new OpenKeyError('PAYLOAD_TOO_LARGE', label);
}
