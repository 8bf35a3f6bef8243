// The two ends of the store owner's interface in a multi-core appliance. LevelDB is single-process,
// and the audit chain, policy counters, consumed nonces and service-session sequence windows must
// each have exactly one writer, so ONE process (the cluster primary) owns them all: the store (with
// its group commit and write-through cache) and the service sessions. Workers, which terminate the
// connections and do the per-call work (decoding, MAC and stamp checks of the body digest, policy,
// unsealing, signing, receipts), reach that state through `RemoteStore` and `RemoteServiceSessions`,
// which forward each operation over the IPC channel.
//
// What a worker keeps, and why that is safe:
// - principal records (they are never replaced or removed, ports.ts `createPrincipal`);
// - key records and policies, in worker-reads.ts, each checked by the owner when the decision
//   commits (`expectKey`/`expectDoc`);
// - the secrets of service sessions it has seen authenticated by the owner, so that a Sign or
//   SignBatch call's MAC is checked in the worker; its sequence number is spent by the owner
//   when the call commits (the `serviceSession` change, applied by `ownerHandlers` around the
//   store commit, together with the session's liveness), so replays, ended sessions and the
//   window are decided in one place, atomically with the decision. Secrets travel only over the
//   IPC pipe inside the TEE, are never logged or stored, and are zeroized when forgotten.
// So a warm session-authenticated Sign costs the worker one round trip to the owner: the commit.

import { parseSessionStamp } from '../../../proto/protocol/session-stamp.ts';
import type { CollateralProvider } from '../core/attestation.ts';
import type { AuthRequest, Authenticated } from '../core/auth.ts';
import { zeroize } from '../core/bytes.ts';
import { OpenKeyError, isOpenKeyError, type ErrorCode } from '../core/errors.ts';
import { copyChanges, type Change, type CommitOptions, type DocSpace, type ListPage, type PrincipalRecord, type Store } from '../core/ports.ts';
import { sessionMacMatches, type OpenedSession, type ServiceSessionsPort, type SharedServiceSessions } from '../core/service-sessions.ts';
import type { ChannelClient, Handler } from './channel.ts';

/** Operation names on the channel. */
const OPS = {
  getPrincipal: 'store.getPrincipal',
  getKey: 'store.getKey',
  listKeys: 'store.listKeys',
  commit: 'store.commit',
  commitEach: 'store.commitEach',
  pruneNonces: 'store.pruneNonces',
  getCounter: 'store.getCounter',
  getTokenBucket: 'store.getTokenBucket',
  getAuditHead: 'store.getAuditHead',
  getDoc: 'store.getDoc',
  listDocs: 'store.listDocs',
  pruneDocs: 'store.pruneDocs',
  readAudit: 'store.readAudit',
  openSession: 'sessions.open',
  shareSession: 'sessions.share',
  closeSession: 'sessions.close',
  collateral: 'tee.collateral',
} as const;

/** Most principal records a worker keeps. */
const MAX_KNOWN_PRINCIPALS = 4096;

export interface RemoteStoreOptions {
  /** A commit that spent a session's sequence number found the session ended (SESSION_EXPIRED). */
  readonly sessionEnded?: (sessionId: string) => void;
}

/** A Store whose every operation runs in the owner process (principal records are kept once read). */
export class RemoteStore implements Store {
  readonly #principals = new Map<string, PrincipalRecord>();

  constructor(
    private readonly channel: ChannelClient,
    private readonly o: RemoteStoreOptions = {},
  ) {}

  async getPrincipal(id: string): Promise<PrincipalRecord | undefined> {
    const known = this.#principals.get(id);
    if (known !== undefined) return copyPrincipal(known);
    const p = await this.channel.call<PrincipalRecord | undefined>(OPS.getPrincipal, [id]);
    // Only records that exist: an unknown id may be created later, and guesses must not fill this.
    if (p !== undefined) {
      if (this.#principals.size >= MAX_KNOWN_PRINCIPALS) this.#principals.delete(this.#principals.keys().next().value as string);
      this.#principals.set(id, copyPrincipal(p));
    }
    return p;
  }
  getKey(keyId: string) {
    return this.channel.call<Awaited<ReturnType<Store['getKey']>>>(OPS.getKey, [keyId]);
  }
  listKeys(owner: string, page: ListPage) {
    return this.channel.call<Awaited<ReturnType<Store['listKeys']>>>(OPS.listKeys, [owner, page]);
  }
  commit(changes: readonly Change[], options: CommitOptions = {}): Promise<void> {
    if (options.signal?.aborted === true) return Promise.reject(abortError(options.signal));
    if (changes.length === 0) return Promise.resolve();
    // Copied now: the message leaves at the end of this loop turn, and the caller's arrays are theirs.
    const sent = this.channel.call<void>(OPS.commit, [copyChanges(changes)], options.signal);
    const ended = this.o.sessionEnded;
    const session = ended === undefined ? undefined : changes.find((c) => c.kind === 'serviceSession');
    if (ended === undefined || session?.kind !== 'serviceSession') return sent;
    return sent.catch((e: unknown) => {
      if (isOpenKeyError(e) && e.code === 'SESSION_EXPIRED') ended(session.sessionId);
      throw e;
    });
  }
  async commitEach(groups: readonly (readonly Change[])[]): Promise<(OpenKeyError | undefined)[]> {
    const results = await this.channel.call<(WireError | undefined)[]>(OPS.commitEach, [groups.map(copyChanges)]);
    return results.map((r) => (r === undefined ? undefined : new OpenKeyError(r.code, r.detail)));
  }
  pruneNonces(now: number) {
    return this.channel.call<number>(OPS.pruneNonces, [now]);
  }
  getCounter(counter: string) {
    return this.channel.call<Awaited<ReturnType<Store['getCounter']>>>(OPS.getCounter, [counter]);
  }
  getTokenBucket(bucket: string) {
    return this.channel.call<Awaited<ReturnType<Store['getTokenBucket']>>>(OPS.getTokenBucket, [bucket]);
  }
  getAuditHead() {
    return this.channel.call<Awaited<ReturnType<Store['getAuditHead']>>>(OPS.getAuditHead, []);
  }
  getDoc(space: DocSpace, id: string) {
    return this.channel.call<Awaited<ReturnType<Store['getDoc']>>>(OPS.getDoc, [space, id]);
  }
  listDocs(space: DocSpace, page: ListPage & { readonly prefix?: string }) {
    return this.channel.call<Awaited<ReturnType<Store['listDocs']>>>(OPS.listDocs, [space, page]);
  }
  pruneDocs(now: number) {
    return this.channel.call<number>(OPS.pruneDocs, [now]);
  }
  readAudit(from: number, to: number) {
    return this.channel.call<Awaited<ReturnType<Store['readAudit']>>>(OPS.readAudit, [from, to]);
  }
  /** The store is the owner's to close; a worker only waits for its own calls to settle. */
  async close(): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (this.channel.pending > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  }
}

/** A per-group commit error as it crosses the channel (an Error's own fields do not survive cloning). */
interface WireError {
  readonly code: ErrorCode;
  readonly detail: string | undefined;
}

function copyPrincipal(p: PrincipalRecord): PrincipalRecord {
  return { ...p, publicKey: Uint8Array.from(p.publicKey) };
}

function abortError(signal: AbortSignal): unknown {
  const r: unknown = signal.reason;
  return r instanceof OpenKeyError ? r : new OpenKeyError('CANCELLED', 'call cancelled');
}

/** Most sessions a worker remembers (expiry, and the secret once shared) before it drops ended ones. */
const MAX_KNOWN_SESSIONS = 8192;

interface KnownSession {
  readonly principal: PrincipalRecord;
  readonly expiresAt: number;
  /** The session's MAC key, once the owner has shared it. Zeroized when the session is forgotten. */
  readonly secret: Buffer | undefined;
}

export interface RemoteServiceSessionsOptions {
  readonly now?: () => number;
  /**
   * Methods whose calls this worker authenticates itself once it holds the session's secret. Each
   * must commit the caller's `nonceChanges` with its decision before acting (core/signing.ts does),
   * because that commit is where the owner spends the sequence number. Default: none.
   */
  readonly localMethods?: ReadonlySet<string>;
}

/**
 * Service sessions held by the owner: one sequence window per session, whichever core the call
 * reaches. A call the owner authenticates (the first on this worker for a session, or a method not
 * in `localMethods`) spends its sequence number there and then, and the owner shares the session's
 * secret with this worker; later calls of `localMethods` are checked here and carry their sequence
 * number to the owner in their commit (`serviceSession`). The expiry the owner reported answers
 * `remainingMs` without a round trip; an ended session is refused by the owner at commit anyway.
 */
export class RemoteServiceSessions implements ServiceSessionsPort {
  readonly #known = new Map<string, KnownSession>();
  readonly #now: () => number;
  readonly #localMethods: ReadonlySet<string>;

  constructor(
    private readonly channel: ChannelClient,
    o: RemoteServiceSessionsOptions = {},
  ) {
    this.#now = o.now ?? Date.now;
    this.#localMethods = o.localMethods ?? new Set();
  }

  open(auth: Authenticated, recipientPublicKey: Uint8Array, ttlSeconds: number): Promise<OpenedSession> {
    return this.channel.call<OpenedSession>(OPS.openSession, [withoutSignal(auth), recipientPublicKey, ttlSeconds]);
  }

  async authenticate(req: AuthRequest & { readonly sessionStamp: string }): Promise<Authenticated> {
    const stamp = parseSessionStamp(req.sessionStamp);
    const known = stamp === undefined ? undefined : this.#known.get(stamp.sessionId);
    if (stamp !== undefined && known?.secret !== undefined && this.#localMethods.has(req.method)) {
      // The owner's checks, in its order, for what can be decided here; the rest at commit.
      if (known.expiresAt <= this.#now()) {
        this.forget(stamp.sessionId);
        throw new OpenKeyError('SESSION_EXPIRED', 'service session ended; open a new one');
      }
      if (!sessionMacMatches(known.secret, req, stamp)) throw new OpenKeyError('STAMP_INVALID', 'session MAC');
      return {
        principal: copyPrincipal(known.principal),
        serviceSession: { id: stamp.sessionId, expiresAt: known.expiresAt },
        method: req.method,
        requestDigest: req.bodyDigest,
        nonceChanges: [{ kind: 'serviceSession', sessionId: stamp.sessionId, seq: stamp.seq }],
      };
    }
    const withSecret = stamp !== undefined && known?.secret === undefined;
    const shared = await this.channel.call<{ auth: Authenticated; secret: Uint8Array | undefined }>(OPS.shareSession, [withoutSignal(req), withSecret]);
    const { auth } = shared;
    const s = auth.serviceSession;
    try {
      if (s !== undefined) {
        // Concurrent first calls may each have been sent the secret: keep the copy already held.
        const secret = this.#known.get(s.id)?.secret ?? (shared.secret === undefined ? undefined : Buffer.from(shared.secret));
        if (!this.#known.has(s.id) && this.#known.size >= MAX_KNOWN_SESSIONS) this.#forgetEnded();
        this.#known.set(s.id, { principal: copyPrincipal(auth.principal), expiresAt: s.expiresAt, secret });
      }
    } finally {
      zeroize(shared.secret);
    }
    return auth;
  }

  /** Closed at the owner, which then tells every worker to forget it (this one too, at once here). */
  async close(auth: Authenticated, sessionId: string): Promise<boolean> {
    const wasLive = await this.channel.call<boolean>(OPS.closeSession, [withoutSignal(auth), sessionId]);
    this.forget(sessionId);
    return wasLive;
  }

  remainingMs(id: string): number {
    const known = this.#known.get(id);
    if (known === undefined) return 0;
    const left = known.expiresAt - this.#now();
    if (left > 0) return left;
    this.forget(id);
    return 0;
  }

  /** Forgets session `id` and zeroizes its secret (it ended). */
  forget(id: string): void {
    const known = this.#known.get(id);
    if (known === undefined) return;
    this.#known.delete(id);
    zeroize(known.secret);
  }

  /** Forgets every session (worker shutdown). */
  clear(): void {
    for (const id of [...this.#known.keys()]) this.forget(id);
  }

  #forgetEnded(): void {
    const now = this.#now();
    for (const [id, k] of this.#known) if (k.expiresAt <= now) this.forget(id);
    // Still full of live sessions: forget the oldest (their calls go to the owner again).
    for (const id of [...this.#known.keys()]) {
      if (this.#known.size < MAX_KNOWN_SESSIONS) break;
      this.forget(id);
    }
  }
}

/** Collateral for Attest responses, from the owner (which runs the simulator or knows the PCCS). */
export function remoteCollateral(channel: ChannelClient): CollateralProvider {
  return { forQuote: (quote) => channel.call<string | undefined>(OPS.collateral, [quote]) };
}

/** A signal is this process's own; it crosses as a cancel message, never as a value. */
function withoutSignal<T extends { readonly signal?: AbortSignal | undefined }>(v: T): Omit<T, 'signal'> {
  const { signal: _signal, ...rest } = v;
  return rest;
}

export interface OwnerState {
  readonly store: Store;
  readonly sessions: SharedServiceSessions;
  readonly collateral: CollateralProvider | undefined;
  /** Hears every worker commit that was written (e.g. to tell workers which cached reads changed). */
  readonly written?: (changes: readonly Change[]) => void;
  /** Hears every session CloseSession ended (to tell workers to forget their copies of its secret). */
  readonly sessionClosed?: (sessionId: string) => void;
}

const SESSION_CLOSED_TAG = 'openkey.session-closed';

/** The owner's word to every worker that a session was closed: forget it and zeroize its secret. */
export interface SessionClosedMessage {
  readonly tag: typeof SESSION_CLOSED_TAG;
  readonly sessionId: string;
}

export function sessionClosedMessage(sessionId: string): SessionClosedMessage {
  return { tag: SESSION_CLOSED_TAG, sessionId };
}

export function isSessionClosedMessage(m: unknown): m is SessionClosedMessage {
  return typeof m === 'object' && m !== null && (m as { tag?: unknown }).tag === SESSION_CLOSED_TAG && typeof (m as { sessionId?: unknown }).sessionId === 'string';
}

/**
 * A worker's commit: a `serviceSession` change is applied here, around the store's commit (the
 * session is live, its principal exists, the sequence number is taken), and undone if the store
 * then writes nothing, so the number is spent exactly when the decision is recorded. The owner is
 * one thread: nothing can use the number between the check and the outcome of the write.
 */
async function commitForWorker(o: OwnerState, changes: readonly Change[], signal: AbortSignal): Promise<void> {
  let session: Extract<Change, { kind: 'serviceSession' }> | undefined;
  let rest = changes;
  for (const c of changes) {
    if (c.kind !== 'serviceSession') continue;
    if (session !== undefined) throw new OpenKeyError('INTERNAL', 'one service session per commit');
    session = c;
  }
  let release: (() => void) | undefined;
  if (session !== undefined) {
    rest = changes.filter((c) => c.kind !== 'serviceSession');
    release = await o.sessions.hold(session.sessionId, session.seq);
  }
  try {
    await o.store.commit(rest, { signal });
  } catch (e) {
    release?.();
    throw e;
  }
  o.written?.(rest);
}

/** What the owner serves each worker. Arguments arrive from our own workers, typed by the client above. */
export function ownerHandlers(o: OwnerState): Record<string, Handler> {
  const s = o.store;
  // Arguments come from this file's own client; `a` only restates their types.
  const a = (args: readonly unknown[]): unknown => args;
  return {
    [OPS.getPrincipal]: (args) => s.getPrincipal(...(a(args) as [string])),
    [OPS.getKey]: (args) => s.getKey(...(a(args) as [string])),
    [OPS.listKeys]: (args) => s.listKeys(...(a(args) as [string, ListPage])),
    [OPS.commit]: (args, signal) => commitForWorker(o, ...(a(args) as [readonly Change[]]), signal),
    [OPS.commitEach]: async (args) => {
      const results = await s.commitEach(...(a(args) as [readonly (readonly Change[])[]]));
      return results.map((e): WireError | undefined => (e === undefined ? undefined : { code: e.code, detail: e.detail }));
    },
    [OPS.pruneNonces]: (args) => s.pruneNonces(...(a(args) as [number])),
    [OPS.getCounter]: (args) => s.getCounter(...(a(args) as [string])),
    [OPS.getTokenBucket]: (args) => s.getTokenBucket(...(a(args) as [string])),
    [OPS.getAuditHead]: () => s.getAuditHead(),
    [OPS.getDoc]: (args) => s.getDoc(...(a(args) as [DocSpace, string])),
    [OPS.listDocs]: (args) => s.listDocs(...(a(args) as [DocSpace, ListPage & { readonly prefix?: string }])),
    [OPS.pruneDocs]: (args) => s.pruneDocs(...(a(args) as [number])),
    [OPS.readAudit]: (args) => s.readAudit(...(a(args) as [number, number])),
    [OPS.openSession]: (args, signal) => {
      const [auth, key, ttl] = a(args) as [Authenticated, Uint8Array, number];
      return o.sessions.open({ ...auth, signal }, key, ttl);
    },
    [OPS.shareSession]: (args, signal) => {
      const [req, withSecret] = a(args) as [AuthRequest & { readonly sessionStamp: string }, boolean];
      // The signal is the worker's: strip the owner's before the Authenticated goes back.
      return o.sessions.share({ ...req, signal }, withSecret === true).then(({ auth, secret }) => ({ auth: withoutSignal(auth), secret }));
    },
    [OPS.closeSession]: async (args, signal) => {
      const [auth, sessionId] = a(args) as [Authenticated, string];
      const wasLive = await o.sessions.close({ ...auth, signal }, sessionId);
      if (wasLive) o.sessionClosed?.(sessionId);
      return wasLive;
    },
    [OPS.collateral]: (args) => {
      const [quote] = a(args) as [Uint8Array];
      return o.collateral === undefined ? Promise.resolve(undefined) : o.collateral.forQuote(quote);
    },
  };
}
