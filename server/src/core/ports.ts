// The ports the domain core needs from the world. Adapters (server/src/adapters) implement them;
// the composition root (server/src/main.ts) wires them. Nothing here imports a transport, storage,
// logging or TEE library.

import { isOpenKeyError, OpenKeyError, type ErrorCode } from './errors.ts';

/** Milliseconds since the Unix epoch. Injected so tests control time. */
export interface Clock {
  now(): number;
}

/** Cryptographically secure randomness. Injected so tests can be deterministic where that is safe. */
export interface Random {
  bytes(n: number): Uint8Array;
}

export type TeeKeyAlgorithm = 'secp256k1' | 'ed25519';

/** A key derived by the TEE's key provider (dstack `GetKey`) and the chain that vouches for it. */
export interface TeeDerivedKey {
  /** 32 bytes of secret key material. The caller zeroizes it when done. */
  readonly key: Uint8Array;
  /** dstack signature chain: [app-key signature over purpose:pubkey, KMS signature over app key]. */
  readonly signatureChain: readonly Uint8Array[];
}

export interface TeeAppInfo {
  readonly appId: string;
  readonly instanceId: string;
  readonly composeHash: string;
  readonly osImageHash: string;
  readonly keyProviderInfo: string;
  readonly appName: string;
  readonly deviceId: string;
  readonly mrAggregated: string;
  /** Raw tcb_info JSON from the guest agent (measurements and event log), unparsed. */
  readonly tcbInfo: string;
}

export interface TeeQuote {
  readonly quote: Uint8Array;
  /** The guest agent's event log, a JSON array as text. */
  readonly eventLog: string;
  readonly vmConfig: string;
}

/** Access to the trusted execution environment (dstack guest agent, or the project's simulator). */
export interface Tee {
  getKey(path: string, purpose: string, algorithm: TeeKeyAlgorithm): Promise<TeeDerivedKey>;
  info(): Promise<TeeAppInfo>;
  /** report_data of at most 64 bytes; the TEE right-pads it with zeros. */
  quote(reportData: Uint8Array): Promise<TeeQuote>;
}

// ---- Persistent state -------------------------------------------------------------------------

export type KeyAlgorithm = 'secp256k1' | 'ed25519';
export type PrincipalAlgorithm = 'ed25519' | 'p256';
/** Stored principals are admins and services; 'person' is a passkey holder acting through a session. */
export type PrincipalRole = 'admin' | 'service' | 'person';

export interface PrincipalRecord {
  readonly id: string;
  readonly role: PrincipalRole;
  readonly algorithm: PrincipalAlgorithm;
  /** Ed25519: 32 raw bytes. P-256: 33-byte compressed or 65-byte uncompressed SEC1 point. */
  readonly publicKey: Uint8Array;
  readonly name: string;
  readonly createdAt: number;
}

export interface KeyRecord {
  readonly keyId: string;
  readonly owner: string;
  readonly algorithm: KeyAlgorithm;
  readonly publicKey: Uint8Array;
  readonly label: string;
  readonly rawDigestSigning: boolean;
  readonly createdAt: number;
  /** The sealed envelope (see core/sealing.ts). Opaque to the store. */
  readonly sealed: Uint8Array;
}

// ---- Usage counters and the audit chain (policy.ts, audit.ts) ------------------------------------

/** A cumulative counter for one fixed window (policy caps: "at most N per day"). */
export interface WindowCounter {
  /** Start of the window the count belongs to (ms since the epoch). */
  readonly windowStart: number;
  readonly count: number;
}

/**
 * A token bucket (policy rate limits), in integer units so arithmetic is exact: one token is
 * `refillPeriodMs` units, and the bucket gains `refillTokens` units per elapsed millisecond
 * (`refillTokens` tokens per `refillPeriodMs`), up to `capacity` tokens.
 */
export interface TokenBucketParams {
  /** Burst size, in tokens. */
  readonly capacity: number;
  readonly refillTokens: number;
  readonly refillPeriodMs: number;
}

export interface TokenBucketState extends TokenBucketParams {
  /** Current level in units (tokens × refillPeriodMs). */
  readonly level: number;
  /** When `level` was computed (ms since the epoch). */
  readonly at: number;
}

export type AuditDecision = 'allow' | 'deny';

/** One decision as the caller reports it; the store numbers and chains it (see core/audit.ts). */
export interface AuditEntry {
  readonly time: number;
  /** The principal the decision was about; '' when there is none (e.g. a failed login). */
  readonly principal: string;
  /** Lowercase snake-case operation name, e.g. "eip712", "seal_key", "login". */
  readonly operation: string;
  /** '' when the operation concerns no key. */
  readonly keyId: string;
  /** SHA-256 of the canonical request (32 bytes), or empty when there is no request. */
  readonly requestDigest: Uint8Array;
  readonly decision: AuditDecision;
  /** A stable UPPER_SNAKE reason code (policy.ts `PolicyReason`, or an ErrorCode). */
  readonly reason: string;
  /**
   * How many identical decisions the record stands for: the items of one SignBatch that share key,
   * operation and outcome are one record. Absent means 1 (and a record of 1 never carries it).
   */
  readonly count?: number;
}

/** A stored audit record: hash = SHA-256(canonical(entry, seq) ‖ prevHash) (core/audit.ts). */
export interface AuditRecord extends AuditEntry {
  /** 1, 2, 3, … with no gaps. */
  readonly seq: number;
  readonly prevHash: Uint8Array;
  readonly hash: Uint8Array;
}

/** The newest record's seq and hash; {0, 32 zero bytes} for an empty log. */
export interface AuditHead {
  readonly seq: number;
  readonly hash: Uint8Array;
}

// ---- Documents (people, passkeys, challenges, sessions, policies, grants, delegations) ------------

/**
 * A document space: a family of small records the domain encodes itself (JSON, checked on read),
 * e.g. "passkey", "session", "policy". Lowercase, at most 32 characters.
 */
export type DocSpace = string;

/** A stored document. `version` starts at 1 and grows by one on every write (compare-and-set). */
export interface StoredDoc {
  readonly value: Uint8Array;
  readonly version: number;
  /** When set, the document may be pruned after this instant (pruneExpired). The domain still checks it. */
  readonly expiresAt?: number;
}

/**
 * One change in an atomic write. Conditional changes (`create*`, `consumeNonce`, `incrementCounter`,
 * `takeTokens`) are checked inside the same atomic section as the write: if any condition fails,
 * nothing is written and the store throws the matching OpenKeyError (PRINCIPAL_EXISTS, INTERNAL for
 * a key-id collision, STAMP_REPLAYED, CAP_EXCEEDED, RATE_LIMITED). Changes see the effects of earlier
 * changes of the same commit (two increments of one counter add up; two audit appends chain).
 */
export type Change =
  /**
   * Principals are never replaced or removed (no change does either), which is what lets cluster
   * workers keep them (cluster/remote.ts): a change that alters principals must invalidate there.
   */
  | { readonly kind: 'createPrincipal'; readonly principal: PrincipalRecord }
  | { readonly kind: 'createKey'; readonly key: KeyRecord }
  | { readonly kind: 'replaceKey'; readonly key: KeyRecord }
  | { readonly kind: 'consumeNonce'; readonly principalId: string; readonly nonce: string; readonly expiresAt: number }
  /**
   * Adds `by` to `counter` in the window starting at `windowStart`, or fails with CAP_EXCEEDED if the
   * count would exceed `limit`. A later window resets the count; an earlier one (a request decided
   * just before a rollover, or a replica with a lagging clock) counts against the stored, newer one.
   */
  | { readonly kind: 'incrementCounter'; readonly counter: string; readonly windowStart: number; readonly by: number; readonly limit: number }
  /**
   * Takes `tokens` from bucket `bucket` at time `now`, or fails with RATE_LIMITED. A new bucket, or
   * one stored with other parameters (the policy changed), starts full.
   */
  | ({ readonly kind: 'takeTokens'; readonly bucket: string; readonly now: number; readonly tokens: number } & TokenBucketParams)
  /** Appends `entry` to the audit chain after the head as of this point of the commit. */
  | { readonly kind: 'appendAudit'; readonly entry: AuditEntry }
  /**
   * Writes document (space, id). `ifVersion`: 0 = it must not exist; n ≥ 1 = it must be at version
   * n; omitted = unconditional. A failed condition throws `conflict` (default CONFLICT).
   */
  | {
      readonly kind: 'putDoc';
      readonly space: DocSpace;
      readonly id: string;
      readonly value: Uint8Array;
      readonly ifVersion?: number;
      readonly expiresAt?: number;
      readonly conflict?: ErrorCode;
    }
  /**
   * Deletes document (space, id). With `ifVersion` it must exist at that version (a single-use
   * record is consumed by exactly one commit), else `conflict` is thrown; without, a missing
   * document is no error.
   */
  | { readonly kind: 'deleteDoc'; readonly space: DocSpace; readonly id: string; readonly ifVersion?: number; readonly conflict?: ErrorCode }
  /**
   * Conditions that write nothing: the key record (document) a decision read is still the stored
   * one. `version` is core/read-versions.ts's fingerprint of what was read; empty = it was absent.
   * Otherwise CONFLICT: read again and decide again. (Cluster workers decide on cached reads.)
   */
  | { readonly kind: 'expectKey'; readonly keyId: string; readonly version: Uint8Array }
  | { readonly kind: 'expectDoc'; readonly space: DocSpace; readonly id: string; readonly version: Uint8Array }
  /**
   * Service session `sessionId` (core/service-sessions.ts) is live, its principal still exists, and,
   * with `seq`, that sequence number is spent by this commit (accepted at most once). Not a store
   * change: the holder of the sessions (a cluster's owner) applies it around the store's commit,
   * and a store refuses it with INTERNAL. Fails with SESSION_EXPIRED, STAMP_REPLAYED,
   * STAMP_EXPIRED (too far behind the window) or STAMP_INVALID (principal gone); nothing written.
   */
  | { readonly kind: 'serviceSession'; readonly sessionId: string; readonly seq?: number };

/**
 * A deep copy of changes, for a store or a channel that acts on them after `commit` returns (a
 * caller's later change to its objects must never reach the disk). Changes are plain objects,
 * arrays, primitives and byte arrays; byte arrays are sliced, because structuredClone would copy
 * a view's whole backing buffer (often an 8 KiB pool) and costs several times more.
 */
export function copyChanges(changes: readonly Change[]): Change[] {
  return copyOf(changes) as Change[];
}

function copyOf(v: unknown): unknown {
  if (v instanceof Uint8Array) return v.slice();
  if (Array.isArray(v)) return v.map(copyOf);
  if (typeof v === 'object' && v !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = copyOf(x);
    return out;
  }
  return v;
}

export interface ListPage {
  readonly limit: number;
  /** Return keys whose id sorts after this one (exclusive). */
  readonly after?: string;
}

export interface CommitOptions {
  readonly signal?: AbortSignal | undefined;
}

/** Why `signal` was aborted, as the OpenKeyError a dropped commit rejects with. */
export function abortReason(signal: AbortSignal): OpenKeyError {
  const r: unknown = signal.reason;
  return isOpenKeyError(r) ? r : new OpenKeyError('CANCELLED', 'call cancelled');
}

export interface Store {
  getPrincipal(id: string): Promise<PrincipalRecord | undefined>;
  getKey(keyId: string): Promise<KeyRecord | undefined>;
  /** The owner's keys in key-id order. */
  listKeys(owner: string, page: ListPage): Promise<KeyRecord[]>;
  /**
   * All changes, or none. A commit whose `signal` is aborted before it is written is dropped (it
   * rejects with the signal's reason, an OpenKeyError: DEADLINE_EXCEEDED or CANCELLED); once its
   * write has started it completes regardless.
   */
  commit(changes: readonly Change[], options?: CommitOptions): Promise<void>;
  /**
   * Independent commits applied in order inside one atomic write (group commit: one durable write
   * for many requests). Each group is all-or-nothing on its own and sees the groups before it; the
   * result holds, per group, undefined (written) or the error that rejected it (nothing of it
   * written). Rejects as a whole only if the write itself fails (then no group is written).
   */
  commitEach(groups: readonly (readonly Change[])[]): Promise<(OpenKeyError | undefined)[]>;
  /** Drops consumed nonces whose expiry is before `now`. Returns how many were removed. */
  pruneNonces(now: number): Promise<number>;
  getCounter(counter: string): Promise<WindowCounter | undefined>;
  getTokenBucket(bucket: string): Promise<TokenBucketState | undefined>;
  getAuditHead(): Promise<AuditHead>;
  getDoc(space: DocSpace, id: string): Promise<StoredDoc | undefined>;
  /** Documents of `space` whose id starts with `prefix`, in id order (UTF-8 bytes), after `after`. */
  listDocs(space: DocSpace, page: ListPage & { readonly prefix?: string }): Promise<{ readonly id: string; readonly doc: StoredDoc }[]>;
  /** Deletes documents whose expiresAt is before `now`. Returns how many were removed. */
  pruneDocs(now: number): Promise<number>;
  /**
   * The stored audit records whose storage seq is in [from, to], in seq order, at most
   * MAX_AUDIT_READ (1000). Returned as stored: checking the links is core/audit.ts's verifier's job.
   */
  readAudit(from: number, to: number): Promise<AuditRecord[]>;
  close(): Promise<void>;
}
