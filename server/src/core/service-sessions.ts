// Service sessions (proto/protocol/session-stamp.ts): a service proves itself once with its own key
// and then authenticates each call with an HMAC under a session secret, about a hundredth of the
// CPU of verifying an Ed25519 stamp. Replay protection is kept, not traded: every sequence number
// is accepted at most once per session (a sliding window tolerates calls that overtake each other
// on a multiplexed connection), and a call's MAC binds its method and body digest.
//
// Secrets live in this process's memory only: never stored, never logged, zeroized when the session
// ends. A restart ends every session (callers get SESSION_EXPIRED and open a new one), which is
// what makes in-memory replay windows sound: a window can only be lost together with its secret.
// Bounded: at most `maxSessions` live sessions and `maxPerPrincipal` per principal; beyond that
// OpenSession answers RESOURCE_EXHAUSTED.
//
// In a multi-core appliance the cluster's owner holds the sessions and its workers check MACs
// themselves (cluster/remote.ts): `share` hands a worker the secret of a session it has just seen
// authenticated (over the IPC pipe inside the TEE, nowhere else), and `hold` decides a worker's
// sequence number when the call commits, so the window stays in one process.

import { timingSafeEqual } from 'node:crypto';
import { hmacSha256 } from './crypto/sha256.ts';
import {
  isSessionId,
  parseSessionStamp,
  SESSION_SECRET_BYTES,
  SESSION_SECRET_INFO,
  SESSION_SEQ_WINDOW,
  sessionStampInput,
  type SessionStampFields,
} from '../../../proto/protocol/session-stamp.ts';
import type { AuthRequest, Authenticated } from './auth.ts';
import { zeroize } from './bytes.ts';
import { appendAudit, denialAudit, type AuditInput } from './audit.ts';
import { OpenKeyError, isOpenKeyError } from './errors.ts';
import type { Clock, PrincipalRecord, Random, Store } from './ports.ts';

/** Seals the session secret to the caller's X25519 key (HPKE, core/crypto/hpke.ts). */
export type SecretSealer = (o: { recipientPublicKey: Uint8Array; plaintext: Uint8Array; info: Uint8Array; aad: Uint8Array }) => {
  readonly enc: Uint8Array;
  readonly ciphertext: Uint8Array;
};

export interface ServiceSessionsOptions {
  readonly store: Pick<Store, 'commit'>;
  readonly clock: Clock;
  readonly random: Random;
  readonly seal: SecretSealer;
  /** Looks up the principal a session acts as, on every call (so a removed principal stops at once). */
  readonly principal: (id: string) => Promise<PrincipalRecord | undefined>;
  readonly defaultTtlMs: number;
  readonly maxTtlMs: number;
  readonly maxSessions: number;
  readonly maxPerPrincipal: number;
}

export interface OpenedSession {
  readonly sessionId: string;
  readonly enc: Uint8Array;
  readonly sealedSecret: Uint8Array;
  readonly expiresAt: number;
}

/** What the RPC layer and the authenticator use: in-process, or the cluster owner's (cluster/remote.ts). */
export interface ServiceSessionsPort {
  open(auth: Authenticated, recipientPublicKey: Uint8Array, ttlSeconds: number): Promise<OpenedSession>;
  authenticate(req: AuthRequest & { readonly sessionStamp: string }): Promise<Authenticated>;
  /** Milliseconds session `id` still lives; 0 once it has ended. Synchronous: asked per stream message. */
  remainingMs(id: string): number;
  /**
   * Ends session `sessionId` of the caller's own principal; true if it was live. PERMISSION_DENIED
   * for another principal's session or a person's call.
   */
  close(auth: Authenticated, sessionId: string): Promise<boolean>;
}

/**
 * What a cluster's owner offers its workers besides the port: the secret of a session a worker
 * has just seen authenticated, and the commit-time check of a worker's call (the `serviceSession`
 * change of ports.ts).
 */
export interface SharedServiceSessions extends ServiceSessionsPort {
  /** `authenticate`, plus a copy of the session's secret if `withSecret`. */
  share(req: AuthRequest & { readonly sessionStamp: string }, withSecret: boolean): Promise<{ readonly auth: Authenticated; readonly secret: Uint8Array | undefined }>;
  /**
   * Session `sessionId` is live and its principal exists; with `seq`, the number is taken from the
   * window. Resolves with the release to call if the commit this guards then writes nothing (the
   * number is then unspent, as a stamp's nonce is when its commit is dropped).
   */
  hold(sessionId: string, seq: number | undefined): Promise<() => void>;
}

/** Whether `mac` is the session MAC of (method, body digest, session id, seq) under `secret`. Constant time. */
export function sessionMacMatches(secret: Uint8Array, req: Pick<AuthRequest, 'method' | 'bodyDigest'>, stamp: SessionStampFields): boolean {
  const expected = hmacSha256(secret, sessionStampInput(req.method, req.bodyDigest, stamp.sessionId, stamp.seq));
  const given = Buffer.from(stamp.mac, 'base64url');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Sequence numbers seen: the highest, and a bitmap of the SESSION_SEQ_WINDOW below it. */
class SeqWindow {
  #high = 0;
  readonly #bits = new Uint32Array(SESSION_SEQ_WINDOW / 32);

  /** Marks `seq` used; false if it was used already or is too far behind to tell. */
  take(seq: number): 'ok' | 'replayed' | 'too-old' {
    if (seq > this.#high) {
      const shift = seq - this.#high;
      if (shift >= SESSION_SEQ_WINDOW) this.#bits.fill(0);
      else for (let s = this.#high + 1; s <= seq; s++) this.#clear(s);
      this.#high = seq;
      this.#set(seq);
      return 'ok';
    }
    if (this.#high - seq >= SESSION_SEQ_WINDOW) return 'too-old';
    if (this.#has(seq)) return 'replayed';
    this.#set(seq);
    return 'ok';
  }

  /**
   * Makes `seq` usable again (its commit wrote nothing). A no-op once the window has moved past it:
   * its bit then stands for a later number.
   */
  release(seq: number): void {
    if (seq > this.#high || this.#high - seq >= SESSION_SEQ_WINDOW) return;
    this.#clear(seq);
  }

  #index(seq: number): [number, number] {
    const i = seq % SESSION_SEQ_WINDOW;
    return [i >>> 5, 1 << (i & 31)];
  }
  #has(seq: number): boolean {
    const [w, b] = this.#index(seq);
    return ((this.#bits[w] ?? 0) & b) !== 0;
  }
  #set(seq: number): void {
    const [w, b] = this.#index(seq);
    this.#bits[w] = (this.#bits[w] ?? 0) | b;
  }
  #clear(seq: number): void {
    const [w, b] = this.#index(seq);
    this.#bits[w] = (this.#bits[w] ?? 0) & ~b;
  }
}

interface Live {
  readonly principalId: string;
  readonly secret: Buffer;
  readonly expiresAt: number;
  readonly window: SeqWindow;
}

export class ServiceSessions implements SharedServiceSessions {
  readonly #live = new Map<string, Live>();
  readonly #perPrincipal = new Map<string, number>();

  constructor(private readonly o: ServiceSessionsOptions) {}

  /**
   * Opens a session for an already authenticated service or administrator (not a person). The
   * opening is audited (`open_session`) in the same commit that spends the stamp's nonce, before
   * the sealed secret is returned; a refusal is audited with its code, and a replayed stamp is
   * STAMP_REPLAYED and opens nothing.
   */
  async open(auth: Authenticated, recipientPublicKey: Uint8Array, ttlSeconds: number): Promise<OpenedSession> {
    const now = this.o.clock.now();
    const entry = { time: now, principal: auth.principal.id, operation: 'open_session' as const, keyId: '', requestDigest: auth.requestDigest };
    let opened: OpenedSession;
    try {
      opened = this.#reserve(auth, recipientPublicKey, ttlSeconds, now);
    } catch (e) {
      await this.#refuse(auth, entry, e);
      throw e;
    }
    try {
      await this.o.store.commit([...auth.nonceChanges, appendAudit({ ...entry, decision: 'allow', reason: 'OWNER' })]);
    } catch (e) {
      const live = this.#live.get(opened.sessionId);
      if (live !== undefined) this.#end(opened.sessionId, live);
      throw e;
    }
    return opened;
  }

  /** The checks of `open`, then the session, live but unknown to anyone until its opening is recorded. */
  #reserve(auth: Authenticated, recipientPublicKey: Uint8Array, ttlSeconds: number, now: number): OpenedSession {
    if (auth.session !== undefined || auth.principal.role === 'person') throw new OpenKeyError('PERMISSION_DENIED', 'service sessions are for services and administrators');
    if (auth.serviceSession !== undefined) throw new OpenKeyError('PERMISSION_DENIED', 'a session cannot open another session');
    if (recipientPublicKey.length === 0) throw new OpenKeyError('MISSING_FIELD', 'recipient_public_key');
    this.sweep(now);
    const ttl = ttlSeconds === 0 ? this.o.defaultTtlMs : ttlSeconds * 1000;
    if (ttl > this.o.maxTtlMs) throw new OpenKeyError('MALFORMED_REQUEST', `ttl_seconds above ${this.o.maxTtlMs / 1000}`);
    const principalId = auth.principal.id;
    if (this.#live.size >= this.o.maxSessions || (this.#perPrincipal.get(principalId) ?? 0) >= this.o.maxPerPrincipal) {
      throw new OpenKeyError('RESOURCE_EXHAUSTED', 'too many open sessions');
    }
    const sessionId = `ses_${Buffer.from(this.o.random.bytes(16)).toString('hex')}`;
    const secret = Buffer.from(this.o.random.bytes(SESSION_SECRET_BYTES));
    let sealed: { enc: Uint8Array; ciphertext: Uint8Array };
    try {
      sealed = this.o.seal({ recipientPublicKey, plaintext: secret, info: new TextEncoder().encode(SESSION_SECRET_INFO), aad: new TextEncoder().encode(sessionId) });
    } catch (e) {
      zeroize(secret);
      throw e; // INVALID_PUBLIC_KEY for a key that is not X25519
    }
    const expiresAt = now + ttl;
    this.#live.set(sessionId, { principalId, secret, expiresAt, window: new SeqWindow() });
    this.#perPrincipal.set(principalId, (this.#perPrincipal.get(principalId) ?? 0) + 1);
    return { sessionId, enc: sealed.enc, sealedSecret: sealed.ciphertext, expiresAt };
  }

  /**
   * Ends session `sessionId` of the caller's principal, audited (`close_session`) with the stamp's
   * nonce before it ends; true if it was live. Refusals are audited with their code.
   */
  async close(auth: Authenticated, sessionId: string): Promise<boolean> {
    const entry = { time: this.o.clock.now(), principal: auth.principal.id, operation: 'close_session' as const, keyId: '', requestDigest: auth.requestDigest };
    try {
      if (auth.session !== undefined || auth.principal.role === 'person') throw new OpenKeyError('PERMISSION_DENIED', 'service sessions are for services and administrators');
      if (sessionId === '') throw new OpenKeyError('MISSING_FIELD', 'session_id');
      if (!isSessionId(sessionId)) throw new OpenKeyError('MALFORMED_REQUEST', 'session_id: expected ses_ and 32 hex digits');
      const live = this.#live.get(sessionId);
      if (live !== undefined && live.principalId !== auth.principal.id) throw new OpenKeyError('PERMISSION_DENIED', 'not a session of the caller');
    } catch (e) {
      await this.#refuse(auth, entry, e);
      throw e;
    }
    // A replayed stamp is STAMP_REPLAYED here, and nothing ends.
    await this.o.store.commit([...auth.nonceChanges, appendAudit({ ...entry, decision: 'allow', reason: 'OWNER' })]);
    const live = this.#live.get(sessionId);
    if (live === undefined) return false;
    const wasLive = live.expiresAt > this.o.clock.now();
    this.#end(sessionId, live);
    return wasLive;
  }

  /** Records a refusal with the stamp's nonce (so its replay is STAMP_REPLAYED); INTERNAL is not a decision. */
  async #refuse(auth: Authenticated, entry: Omit<AuditInput, 'decision' | 'reason'>, e: unknown): Promise<void> {
    if (isOpenKeyError(e) && e.code !== 'INTERNAL') await this.o.store.commit([...auth.nonceChanges, denialAudit(entry, e.code)]);
  }

  /**
   * Authenticates a call carrying a session header. The MAC is checked before the sequence number
   * is consumed, so nobody without the secret can burn a caller's numbers.
   */
  async authenticate(req: AuthRequest & { readonly sessionStamp: string }): Promise<Authenticated> {
    return (await this.#authenticate(req)).auth;
  }

  async share(req: AuthRequest & { readonly sessionStamp: string }, withSecret: boolean): Promise<{ readonly auth: Authenticated; readonly secret: Uint8Array | undefined }> {
    const { auth, live } = await this.#authenticate(req);
    if (!withSecret) return { auth, secret: undefined };
    // It may have ended (and its secret been zeroized) while the principal was looked up.
    if (this.#live.get(auth.serviceSession?.id ?? '') !== live) throw new OpenKeyError('SESSION_EXPIRED', 'service session ended');
    return { auth, secret: Uint8Array.from(live.secret) };
  }

  async hold(sessionId: string, seq: number | undefined): Promise<() => void> {
    if (!isSessionId(sessionId) || (seq !== undefined && !(Number.isSafeInteger(seq) && seq >= 1))) throw new OpenKeyError('INTERNAL', 'hold: ill-formed session id or sequence number');
    const live = this.#alive(sessionId);
    let release = (): void => undefined;
    if (seq !== undefined) {
      this.#take(live, seq);
      release = () => {
        if (this.#live.get(sessionId) === live) live.window.release(seq);
      };
    }
    try {
      if ((await this.o.principal(live.principalId)) === undefined) throw new OpenKeyError('STAMP_INVALID', 'session principal gone');
    } catch (e) {
      release();
      throw e;
    }
    return release;
  }

  async #authenticate(req: AuthRequest & { readonly sessionStamp: string }): Promise<{ auth: Authenticated; live: Live }> {
    const stamp = parseSessionStamp(req.sessionStamp);
    if (stamp === undefined) throw new OpenKeyError('UNAUTHENTICATED', 'malformed session header');
    const live = this.#alive(stamp.sessionId);
    if (!sessionMacMatches(live.secret, req, stamp)) throw new OpenKeyError('STAMP_INVALID', 'session MAC');
    this.#take(live, stamp.seq);
    const principal = await this.o.principal(live.principalId);
    if (principal === undefined) throw new OpenKeyError('STAMP_INVALID', 'session principal gone');
    const auth: Authenticated = {
      principal,
      serviceSession: { id: stamp.sessionId, expiresAt: live.expiresAt },
      method: req.method,
      requestDigest: req.bodyDigest,
      nonceChanges: [],
    };
    return { auth, live };
  }

  /** The live session `id`; SESSION_EXPIRED for one unknown or ended. */
  #alive(id: string): Live {
    const live = this.#live.get(id);
    if (live === undefined || live.expiresAt <= this.o.clock.now()) {
      if (live !== undefined) this.#end(id, live);
      throw new OpenKeyError('SESSION_EXPIRED', 'service session unknown or ended; open a new one');
    }
    return live;
  }

  #take(live: Live, seq: number): void {
    const taken = live.window.take(seq);
    if (taken === 'replayed') throw new OpenKeyError('STAMP_REPLAYED', 'session sequence number already used');
    if (taken === 'too-old') throw new OpenKeyError('STAMP_EXPIRED', 'session sequence number too far behind');
  }

  /**
   * How long session `id` still lives, in milliseconds; 0 once it has ended (expired, cleared, or
   * never existed). Cheap enough to ask before every message of a stream the session opened.
   */
  remainingMs(id: string): number {
    const live = this.#live.get(id);
    if (live === undefined) return 0;
    const left = live.expiresAt - this.o.clock.now();
    if (left > 0) return left;
    this.#end(id, live);
    return 0;
  }

  /** Ends sessions whose time is up; returns how many. */
  sweep(now: number): number {
    let n = 0;
    for (const [id, live] of this.#live) {
      if (live.expiresAt <= now) {
        this.#end(id, live);
        n++;
      }
    }
    return n;
  }

  get size(): number {
    return this.#live.size;
  }

  /** Ends every session (shutdown). */
  clear(): void {
    for (const [id, live] of this.#live) this.#end(id, live);
  }

  #end(id: string, live: Live): void {
    this.#live.delete(id);
    zeroize(live.secret);
    const left = (this.#perPrincipal.get(live.principalId) ?? 1) - 1;
    if (left <= 0) this.#perPrincipal.delete(live.principalId);
    else this.#perPrincipal.set(live.principalId, left);
  }
}

