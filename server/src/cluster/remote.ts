// The two ends of the store owner's interface in a multi-core appliance. LevelDB is single-process,
// and the audit chain, policy counters, consumed nonces and service-session sequence windows must
// each have exactly one writer, so ONE process (the cluster primary) owns them all: the store (with
// its group commit and write-through cache) and the service sessions. Workers, which terminate the
// connections and do the per-call work (decoding, MAC and stamp checks of the body digest, policy,
// unsealing, signing, receipts), reach that state through `RemoteStore` and `RemoteServiceSessions`,
// which forward each operation over the IPC channel. Nothing is cached on the worker side, so every
// decision reads the owner's current state: a revocation is seen by the next call on every core.

import type { CollateralProvider } from '../core/attestation.ts';
import type { AuthRequest, Authenticated } from '../core/auth.ts';
import { OpenKeyError, type ErrorCode } from '../core/errors.ts';
import type { Change, CommitOptions, DocSpace, ListPage, Store } from '../core/ports.ts';
import type { OpenedSession, ServiceSessionsPort } from '../core/service-sessions.ts';
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
  authenticateSession: 'sessions.authenticate',
  collateral: 'tee.collateral',
} as const;

/** A Store whose every operation runs in the owner process. */
export class RemoteStore implements Store {
  constructor(private readonly channel: ChannelClient) {}

  getPrincipal(id: string) {
    return this.channel.call<Awaited<ReturnType<Store['getPrincipal']>>>(OPS.getPrincipal, [id]);
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
    return this.channel.call<void>(OPS.commit, [structuredClone(changes)], options.signal);
  }
  async commitEach(groups: readonly (readonly Change[])[]): Promise<(OpenKeyError | undefined)[]> {
    const results = await this.channel.call<(WireError | undefined)[]>(OPS.commitEach, [structuredClone(groups)]);
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

function abortError(signal: AbortSignal): unknown {
  const r: unknown = signal.reason;
  return r instanceof OpenKeyError ? r : new OpenKeyError('CANCELLED', 'call cancelled');
}

/** Most session expiry times a worker remembers before it drops the ended ones. */
const MAX_KNOWN_EXPIRIES = 8192;

/**
 * Service sessions held by the owner: one sequence window per session, whichever core the call
 * reaches. A session ends only when its time is up (or when the whole appliance stops), so the
 * expiry the owner reported on authentication answers `remainingMs` here without a round trip.
 */
export class RemoteServiceSessions implements ServiceSessionsPort {
  readonly #expiries = new Map<string, number>();

  constructor(
    private readonly channel: ChannelClient,
    private readonly now: () => number = Date.now,
  ) {}

  open(auth: Authenticated, recipientPublicKey: Uint8Array, ttlSeconds: number): Promise<OpenedSession> {
    return this.channel.call<OpenedSession>(OPS.openSession, [withoutSignal(auth), recipientPublicKey, ttlSeconds]);
  }

  async authenticate(req: AuthRequest & { readonly sessionStamp: string }): Promise<Authenticated> {
    const auth = await this.channel.call<Authenticated>(OPS.authenticateSession, [withoutSignal(req)]);
    const s = auth.serviceSession;
    if (s !== undefined) {
      if (this.#expiries.size >= MAX_KNOWN_EXPIRIES && !this.#expiries.has(s.id)) this.#forgetEnded();
      this.#expiries.set(s.id, s.expiresAt);
    }
    return auth;
  }

  remainingMs(id: string): number {
    const expiresAt = this.#expiries.get(id);
    if (expiresAt === undefined) return 0;
    const left = expiresAt - this.now();
    if (left > 0) return left;
    this.#expiries.delete(id);
    return 0;
  }

  #forgetEnded(): void {
    const now = this.now();
    for (const [id, at] of this.#expiries) if (at <= now) this.#expiries.delete(id);
    // Still full of live sessions: forget the oldest entries (their streams then end as expired).
    for (const id of this.#expiries.keys()) {
      if (this.#expiries.size < MAX_KNOWN_EXPIRIES) break;
      this.#expiries.delete(id);
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

/** What the owner serves each worker. Arguments arrive from our own workers, typed by the client above. */
export function ownerHandlers(o: { readonly store: Store; readonly sessions: ServiceSessionsPort; readonly collateral: CollateralProvider | undefined }): Record<string, Handler> {
  const s = o.store;
  // Arguments come from this file's own client; `a` only restates their types.
  const a = (args: readonly unknown[]): unknown => args;
  return {
    [OPS.getPrincipal]: (args) => s.getPrincipal(...(a(args) as [string])),
    [OPS.getKey]: (args) => s.getKey(...(a(args) as [string])),
    [OPS.listKeys]: (args) => s.listKeys(...(a(args) as [string, ListPage])),
    [OPS.commit]: (args, signal) => s.commit(...(a(args) as [readonly Change[]]), { signal }),
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
    [OPS.authenticateSession]: (args, signal) => {
      const [req] = a(args) as [AuthRequest & { readonly sessionStamp: string }];
      // The signal is the worker's: strip the owner's before the Authenticated goes back.
      return o.sessions.authenticate({ ...req, signal }).then((auth) => withoutSignal(auth));
    },
    [OPS.collateral]: (args) => {
      const [quote] = a(args) as [Uint8Array];
      return o.collateral === undefined ? Promise.resolve(undefined) : o.collateral.forQuote(quote);
    },
  };
}
